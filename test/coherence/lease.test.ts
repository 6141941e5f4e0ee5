import { randomUUID } from 'node:crypto'
import t from 'tap'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.js'
import { createMetrics } from '../../src/metrics.js'
import { createSql } from '../../src/db/postgres.js'
import { createLease } from '../../src/sessions/coherence/lease.js'
import { ownChannel, parseMessage } from '../../src/sessions/coherence/messages.js'
import { freshDatabase } from '../helpers/postgres.js'
import { sleep, waitFor } from '../helpers/ports.js'

// The lease on memory, on a real Postgres: held while this instance's probes
// come back through its listener and its registration is fresh; gone at once
// when the listener is lost, and within the lease when probes stop coming.
const LEASE_MS = 600
const db = await freshDatabase(t)
const config = loadConfig({ DATABASE_URL: db.url })
const prober = createSql({ ...config, databasePoolMax: 1 }, db.url)
const listener = createSql({ ...config, databasePoolMax: 1 }, db.url)
t.teardown(async () => { await prober.end({ timeout: 1 }); await listener.end({ timeout: 1 }) })

const id = randomUUID()
const hearing = { on: true }
let lapses = 0
const lease = createLease({
  prober,
  id,
  channel: ownChannel(id),
  leaseMs: LEASE_MS,
  register: true,
  metrics: createMetrics(),
  log: pino({ level: 'silent' }),
  onLapse: () => { lapses++ },
  onEpoch: () => {},
  onDelivered: () => {}
})
t.teardown(() => lease.close())
await listener.listen(ownChannel(id), payload => {
  const m = parseMessage(payload)
  if (m.kind === 'probe' && hearing.on) lease.delivered(m.n)
})

t.test('held once a probe came back and the instance is registered', async t => {
  await waitFor('the lease', () => lease.valid(), 5000)
  const [row] = await db.sql`SELECT lease_until > clock_timestamp() AS live FROM session_validator.instances WHERE id = ${id}`
  t.equal(row?.live, true, 'registered in Postgres, where a revoke looks')
})

t.test('lost with the listener: at once, and memory is told to start over', async t => {
  await waitFor('the lease', () => lease.valid(), 5000)
  const before = lapses
  lease.lost()
  t.equal(lease.valid(), false)
  t.ok(lapses > before, 'onLapse')
  await waitFor('the lease again', () => lease.valid(), 5000)
})

t.test('probes no longer heard: the lease ends within its length', async t => {
  await waitFor('the lease', () => lease.valid(), 5000)
  hearing.on = false
  t.teardown(() => { hearing.on = true })
  // every probe heard was sent before this moment: the lease runs from a
  // probe's sending, so it cannot outlast this plus its length
  const stopped = performance.now()
  await sleep(LEASE_MS)
  while (performance.now() < stopped + LEASE_MS) await sleep(5)
  t.equal(lease.valid(), false, 'ended within the lease of the last probe heard')
  await sleep(LEASE_MS)
  t.equal(lease.valid(), false, 'and stays ended while nothing is heard')
})
