import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { exportedNames, metricNames } from '../helpers/promql.js'
import { scrapeAfterTraffic } from '../helpers/traffic.js'

interface Target { expr?: string }
interface Panel { id: number, type: string, title: string, targets?: Target[], panels?: Panel[] }
interface Dashboard {
  uid: string
  title: string
  panels: Panel[]
  templating: { list: Array<{ name: string, definition?: string }> }
}
interface Rules { groups: Array<{ rules: Array<{ alert: string, expr: string }> }> }

const dashboardText = readFileSync(new URL('../../deploy/grafana/dashboard.json', import.meta.url), 'utf8')
const rules = parse(readFileSync(new URL('../../deploy/prometheus/alerts.yml', import.meta.url), 'utf8')) as Rules

let dashboard: Dashboard
try {
  dashboard = JSON.parse(dashboardText) as Dashboard
} catch (err) {
  t.fail(`deploy/grafana/dashboard.json is not valid JSON: ${(err as Error).message}`)
  process.exit()
}

const panels = dashboard.panels.flatMap(p => [p, ...(p.panels ?? [])])
const queries = panels.flatMap(p => (p.targets ?? []).map(target => ({ where: `panel "${p.title}"`, expr: target.expr ?? '' })))
for (const variable of dashboard.templating.list) {
  const selector = /^label_values\((.+),\s*\w+\)$/.exec(variable.definition ?? '')
  if (selector !== null) queries.push({ where: `variable $${variable.name}`, expr: selector[1]! })
}
const alerts = rules.groups.flatMap(g => g.rules).map(r => ({ where: `alert ${r.alert}`, expr: r.expr }))

// Prometheus' own series for each target, which the target alerts and the
// instances panel read: not the service's to export.
const PROMETHEUS_OWN = new Set(['up'])
const exposition = await scrapeAfterTraffic(t)
const exported = new Set([...exportedNames(exposition), ...PROMETHEUS_OWN])

t.test('the dashboard is well-formed', async t => {
  t.ok(dashboard.uid, 'it has a uid, so re-imports replace it')
  const ids = panels.map(p => p.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  for (const p of panels.filter(p => p.type !== 'row')) t.ok((p.targets ?? []).length > 0, `"${p.title}" has a query`)
})

t.test('it has the panels an on-call person needs', async t => {
  const all = queries.map(q => q.expr)
  const some = (what: string, test: (expr: string) => boolean) => t.ok(all.some(test), what)
  some('validations/s by result', e => /by \(result\).*session_validations_total/.test(e))
  some('cache hit ratio', e => e.includes('session_cache_hits_total') && e.includes('session_cache_misses_total'))
  some('validation p50', e => /histogram_quantile\(0\.5,.*session_validation_duration_seconds_bucket/.test(e))
  some('validation p99', e => /histogram_quantile\(0\.99,.*session_validation_duration_seconds_bucket/.test(e))
  some('breaker state', e => e.includes('circuit_breaker_state'))
  some('Redis latency', e => /histogram_quantile\(.*redis_command_duration_seconds_bucket/.test(e))
  some('Postgres latency', e => /histogram_quantile\(.*db_query_duration_seconds_bucket/.test(e))
  some('503s', e => e.includes('status_code="503"'))
  some('instances up', e => /^up\{/.test(e))
  some('Redis answering (the heartbeat)', e => e.includes('session_cache_redis_responding'))
  some('429s by budget', e => /by \(budget\).*rate_limited_total/.test(e))
  some('limiter decisions from memory', e => e.includes('rate_limit_store_fallback_total'))
  some('epoch moves by cause', e => /by \(cause\).*session_cache_epoch_moves_total/.test(e))
})

t.test('every dashboard query names only metrics the service exports', async t => {
  for (const { where, expr } of queries) {
    const names = metricNames(expr)
    t.ok(names.length > 0, `${where} selects a metric`)
    for (const name of names) t.ok(exported.has(name), `${where}: ${name} is exported`)
  }
})

t.test('every alert names only metrics the service exports', async t => {
  t.equal(alerts.length, 11)
  for (const { where, expr } of alerts) {
    const names = metricNames(expr)
    t.ok(names.length > 0, `${where} selects a metric`)
    for (const name of names) t.ok(exported.has(name), `${where}: ${name} is exported`)
  }
})

t.test('the name check tells real names from made-up ones', async t => {
  t.same(metricNames('histogram_quantile(0.99, sum by (le, job) (rate(x_bucket{job=~"$job", a="b(c)"}[5m] offset 1h))) > 0.05 and on (job) y_total'), ['x_bucket', 'y_total'])
  t.notOk(exported.has('session_validation_duration_seconds'), 'a histogram is queried by its _bucket, _sum and _count')
  t.same([...PROMETHEUS_OWN].filter(name => exportedNames(exposition).has(name)), [], 'what is allowed as Prometheus\' own, the service does not export')
  t.ok(exported.has('session_validation_duration_seconds_bucket'))
})
