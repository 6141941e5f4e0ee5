import { readFileSync } from 'node:fs'
import t from 'tap'
import { families, labelValues } from '../helpers/promql.js'
import { scrapeAfterTraffic } from '../helpers/traffic.js'

// The metric table of docs/operations.md against a real scrape after real
// traffic: what an operator reads there is what the service emits.

const page = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
const section = page.slice(page.indexOf('## Metrics\n'), page.indexOf('## Alerts and dashboard\n'))
const words = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map(m => m[1]!)
// | `name{label,label="value"}`, `name` | what, with `values` |
const rows = section.split('\n').filter(line => line.startsWith('| `')).map(line => {
  const [, names = '', what = ''] = line.split('|').map(cell => cell.trim())
  return {
    metrics: words(names).map(w => ({
      name: w.replace(/\{.*$/, ''),
      labels: (/\{([^}]*)\}/.exec(w)?.[1] ?? '').split(',').filter(l => l !== '').map(l => {
        const [label, value] = l.split('=')
        return { label: label!.trim(), value: value?.replace(/"/g, '') }
      })
    })),
    values: new Set(words(what))
  }
})
const rowOf = (name: string) => rows.find(r => r.metrics.some(m => m.name === name))!

const exposition = await scrapeAfterTraffic(t)
// Node's and the process's (prom-client's defaults) and the HTTP histogram
// (fastify-metrics) are described in the prose above the table.
const ours = [...families(exposition).keys()].filter(name => !/^(process_|nodejs_)/.test(name) && name !== 'http_request_duration_seconds')

t.test('the table names every metric the service defines, and only those', async t => {
  t.ok(rows.length >= 10, `the table was found (${rows.length} rows)`)
  t.same(rows.flatMap(r => r.metrics.map(m => m.name)).sort(), ours.sort())
  t.ok(section.includes('`http_request_duration_seconds{method,route,status_code}`'), 'the prose names the HTTP histogram')
  t.ok(labelValues(exposition, 'http_request_duration_seconds', 'status_code').size > 0, 'which is there')
})

t.test('every label it names is emitted, with the values it lists', async t => {
  for (const row of rows) {
    for (const { name, labels } of row.metrics) {
      for (const { label, value } of labels) {
        const seen = [...labelValues(exposition, name, label)]
        t.ok(seen.length > 0, `${name} has series with ${label}`)
        for (const v of seen) t.ok(value === undefined ? row.values.has(v) : v === value, `${name}{${label}="${v}"} is listed`)
      }
    }
  }
})

t.test('the Redis commands and Postgres queries listed are exactly those emitted', async t => {
  const named = [...rowOf('redis_command_duration_seconds').values].filter(v => !ours.includes(v))
  t.same([...labelValues(exposition, 'redis_command_duration_seconds', 'command')].sort(), named.sort(),
    'the traffic made every cache call, each named as emitted')
  // a replica's queries show only with DATABASE_READ_URL
  const primary = [...rowOf('db_query_errors_total').values].filter(v => !v.startsWith('replica_')).sort()
  t.same([...labelValues(exposition, 'db_query_errors_total', 'query')].sort(), primary, 'every query has its error series from the start')
  for (const q of labelValues(exposition, 'db_query_duration_seconds', 'query')) t.ok(primary.includes(q), `query="${q}" is listed`)
})
