import t from 'tap'
import client from '@platformatic/prom-client'
import { hotCounter, hotHistogram } from '../../src/hot-metrics.js'
import { exposition } from '../../src/metrics.js'

// The hot path's counters and histograms add to plain numbers and fold them in
// at collection: what a scrape reads is exactly prom-client's own.
const BUCKETS = [0.0001, 0.001, 0.01, 0.1, 1]
const values = [0, 0.00005, 0.0001, 0.0002, 0.001, 0.003, 0.05, 0.1, 0.7, 1, 3, 12]

t.test('a hot histogram exposes what prom-client\'s would for the same observations', async t => {
  const mine = new client.Registry()
  const theirs = new client.Registry()
  const hot = hotHistogram({ name: 'x_seconds', help: 'h', labelNames: ['route', 'status'] as const, buckets: BUCKETS, registers: [mine] })
  const plain = new client.Histogram({ name: 'x_seconds', help: 'h', labelNames: ['route', 'status'] as const, buckets: BUCKETS, registers: [theirs] })
  const a = hot.labels('/a', '200')
  for (const v of values) {
    a.observe(v)
    plain.labels('/a', '200').observe(v)
  }
  hot.labels('/b', '503').observe(0.02)
  plain.labels('/b', '503').observe(0.02)
  t.equal(await mine.metrics(), await theirs.metrics())
  // and again after more, folded onto what was folded before
  a.observe(0.5)
  plain.labels('/a', '200').observe(0.5)
  t.equal(await mine.metrics(), await theirs.metrics())
})

t.test('a hot counter likewise; inc(0) shows a series at once', async t => {
  const mine = new client.Registry()
  const theirs = new client.Registry()
  const hot = hotCounter({ name: 'y_total', help: 'h', labelNames: ['tier'] as const, registers: [mine] })
  const plain = new client.Counter({ name: 'y_total', help: 'h', labelNames: ['tier'] as const, registers: [theirs] })
  hot.labels('local').inc(0)
  plain.labels('local').inc(0)
  t.equal(await mine.metrics(), await theirs.metrics())
  for (let i = 0; i < 5; i++) { hot.labels('local').inc(); plain.labels('local').inc() }
  hot.labels('redis').inc(3)
  plain.labels('redis').inc(3)
  t.equal(await mine.metrics(), await theirs.metrics())
  const unlabelled = hotCounter({ name: 'z_total', help: 'h', registers: [mine] })
  unlabelled.inc()
  t.match(await mine.metrics(), /^z_total 1$/m)
})

t.test('the exposition built a few metrics per turn is registry.metrics(), byte for byte', async t => {
  const registry = new client.Registry()
  const h = hotHistogram({ name: 'a_seconds', help: 'h', buckets: BUCKETS, registers: [registry] })
  new client.Gauge({ name: 'b', help: 'h', registers: [registry] }).set(2)
  hotCounter({ name: 'c_total', help: 'h', labelNames: ['k'] as const, registers: [registry] }).labels('v').inc(4)
  h.observe(0.003)
  const sliced = await exposition(registry)
  t.equal(sliced, await registry.metrics())
})
