import type { FastifyInstance } from 'fastify'

// Enough of PromQL to find the metric names a query selects: strings, label
// matchers, ranges and label lists are dropped first, because their words are
// label names and values, not metrics. What is left followed by "(" is a function.
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan'])

export function metricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ')
    .replace(/\boffset\s+-?\w+/gi, ' ')
  const names = new Set<string>()
  for (const match of bare.matchAll(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|[a-zA-Z_:][\w:]*(\s*\()?/gi)) {
    const word = match[0]
    if (/^\d/.test(word) || match[1] !== undefined || KEYWORDS.has(word.toLowerCase())) continue
    names.add(word)
  }
  return [...names]
}

// Every series name a scrape can hold: a histogram named h is queried as
// h_bucket, h_sum and h_count; a summary as itself, _sum and _count.
export function exportedNames (exposition: string): Set<string> {
  const names = new Set<string>()
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line)
    if (type !== null) {
      const [, name, kind] = type as unknown as [string, string, string]
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix)
      else names.add(name)
      if (kind === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix)
      continue
    }
    const sample = /^([a-zA-Z_:][\w:]*)[{ ]/.exec(line)
    if (sample !== null) names.add(sample[1]!)
  }
  return names
}

export async function scrape (app: FastifyInstance): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`)
  return res.payload
}

// The value of one sample of a scrape, e.g. `session_cache_hits_total{tier="local"}`;
// 0 when the series is absent.
export function sample (exposition: string, series: string): number {
  const line = exposition.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

// The label values a scrape holds for `label` on the series of `family`
// (a histogram's _bucket, _sum and _count included).
export function labelValues (exposition: string, family: string, label: string): Set<string> {
  const values = new Set<string>()
  for (const line of exposition.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)\{([^}]*)\}/.exec(line)
    if (m === null || !(m[1] === family || [`${family}_bucket`, `${family}_sum`, `${family}_count`].includes(m[1]!))) continue
    for (const pair of m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) if (pair[1] === label) values.add(pair[2]!)
  }
  return values
}

// Metric families by # TYPE line: name → type.
export function families (exposition: string): Map<string, string> {
  return new Map([...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(m => [m[1]!, m[2]!]))
}
