import type { ProfileSummary } from './cpu-profile.ts'
import type { MemoryBreakdown } from './redis-memory.ts'
import type { MixedResult } from './scenarios/mixed.ts'
import type { SoakResult } from './scenarios/soak.ts'
import type { Summary } from './summary.ts'
import type { Target } from './targets.ts'

export interface ReportInput {
  meta: Record<string, string | number | boolean>
  summary: Summary
  mixedRounds: MixedResult[]
  soak: SoakResult
  memory: MemoryBreakdown
  targets: Target[]
  profiles: ProfileSummary[]
}

const dash = '–'
const num = (v: number | null, digits = 0) => v === null || !Number.isFinite(v) ? dash : v.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const ms = (v: number) => num(v, 2)
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`
const head = (cells: string[]) => [row(cells), row(cells.map(() => '---'))]

function scenarios (s: Summary): string[] {
  return [
    ...head(['scenario', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', '× ceiling', 'server CPU µs / req', 'Postgres CPU µs / req', 'hit ratio', 'PG queries / validation']),
    ...s.rows.map(r => row([r.scenario, num(r.rps), ms(r.p50), ms(r.p99), ms(r.p999), num(r.ratioToCeiling, 3), num(r.cpuUs), num(r.postgresCpuUs),
      num(r.hitRatio, 3), r.floor === null ? num(r.queriesPerValidation, 4) : `${num(r.queriesPerValidation, 4)} (floor ${num(r.floor, 4)})`]))
  ]
}

function atRate (s: Summary, rate: number): string[] {
  return [
    ...head(['route', 'achieved req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'server CPU µs / req', 'generator max late ms']),
    ...s.atRate.map(r => row([r.scenario, num(r.achievedRps), ms(r.p50), ms(r.p99), ms(r.p999), num(r.cpuUs), ms(r.maxLateMs)])),
    '',
    `Open loop at ${num(rate)} req/s; latency counts from each request's scheduled send time.`
  ]
}

function forwardAuth (s: Summary): string[] {
  const f = s.forwardAuth
  if (f === undefined) return ['Skipped: nginx is not installed.']
  return [
    ...head(['path', 'req/s', 'p99 ms']),
    row(['nginx → app', num(f.directRps), ms(f.directP99)]),
    row(['nginx → GET /forward-auth (cache hit) → app', num(f.throughRps), ms(f.throughP99)]),
    '',
    `**Forward auth / direct: ${num(f.ratio, 3)}** (median of each round's ratio). One nginx worker, the README's configuration, ` +
      'the same GET with a session cookie to both; the app is an nginx `return 200`, so the difference is the auth subrequest and the service.'
  ]
}

function memory (m: MemoryBreakdown): string[] {
  const lines = [
    `**${num(m.bytesPerSession)} bytes per cached session**: INFO used_memory grew ${num(m.usedMemoryDelta)} bytes for ${num(m.sessions)} cached sessions ` +
      `(${num(m.entryKeys)} entry keys, ${num(m.indexKeys)} user-index keys, ${num(m.otherKeys)} other).`,
    '',
    ...head(['key kind', 'keys', 'MEMORY USAGE each (sampled)', 'encodings (sampled)']),
    ...m.samples.map(s => row([s.kind, num(s.keys), num(s.bytesEach), Object.entries(s.encodings).map(([e, n]) => `${e} ×${n}`).join(', ')]))
  ]
  if (m.example !== undefined) {
    lines.push('', `One entry: key ${m.example.keyBytes} bytes, ${m.example.fields} fields, ${m.example.valueBytes} bytes of field names and values, ` +
      `longest value ${m.example.longestValue} bytes. Server limits: ${Object.entries(m.listpackLimits).map(([k, v]) => `${k} ${v}`).join(', ')} ` +
      '(a hash past either is stored as a hashtable, several times larger).')
  }
  return lines
}

function mixed (rounds: MixedResult[]): string[] {
  const last = rounds.at(-1)
  if (last === undefined) return []
  return [
    ...head(['window (last round)', 'req/s', 'hit ratio', 'PG queries / validation', 'floor (first sight of a session)']),
    ...last.windows.map((w, i) => row([i + 1, num(w.rps), num(w.hitRatio, 3), num(w.queriesPerValidation, 4), num(w.floor, 4)])),
    '',
    'The floor is the expected share of validations that are the first of their session in this run: no cache can answer those without Postgres.'
  ]
}

function soak (s: SoakResult): string[] {
  const lines = [`${num(s.seconds)} s on the miss path: first ${s.compareSeconds} s ${num(s.firstRps)} req/s, last ${s.compareSeconds} s ${num(s.lastRps)} req/s, ratio ${num(s.ratio, 3)}.`]
  const mean = (ws: SoakResult['windows'], pick: (w: SoakResult['windows'][number]) => number) => ws.reduce((sum, w) => sum + pick(w), 0) / ws.length
  const spans = [['first', s.windows.slice(0, s.compareWindows)], ['last', s.windows.slice(-s.compareWindows)]] as const
  lines.push('', ...head(['span', 'req/s', 'p99 ms (mean of windows)', 'find_session mean ms', 'service CPU µs / req', 'Postgres CPU µs / req', 'RSS MB at end', 'heap MB at end']),
    ...spans.filter(([, ws]) => ws.length > 0).map(([name, ws]) => row([`${name} ${s.compareSeconds} s (to ${ws.at(-1)!.atSeconds} s)`,
      num(mean(ws, w => w.rps)), ms(mean(ws, w => w.p99)), ms(mean(ws, w => w.queryMs)), num(mean(ws, w => w.serviceCpuUs)),
      num(mean(ws, w => w.postgresCpuUs)), num(ws.at(-1)!.rssMb), num(ws.at(-1)!.heapMb)])),
    '', 'CPU per request does not move with other people\'s load the way req/s does: if it holds while req/s falls, the machine got busier, not the service slower.')
  return lines
}

function targets (ts: Target[]): string[] {
  return [
    ...head(['target', 'measured', 'limit', 'result', 'note']),
    ...ts.map(t => row([t.name, num(t.measured, t.limit < 1 ? 4 : 2), `${t.atLeast ? '≥' : '≤'} ${t.limit}`, t.pass ? 'PASS' : '**MISS**', t.note]))
  ]
}

function work (s: Summary): string[] {
  const fmt = (r: Record<string, number>, digits: number) => Object.entries(r).map(([k, v]) => `${k} ${num(v, digits)}`).join(', ') || dash
  const names = { hit: 'hit', miss: 'miss', hitAtRate: 'hit at fixed rate' } as const
  const rows = (['hit', 'miss', 'hitAtRate'] as const).flatMap(name => {
    const w = s.work[name]
    return w === undefined
      ? []
      : [row([names[name], fmt(w.redisCommandsPerValidation, 3), fmt(w.postgresQueriesPerValidation, 4), fmt(w.postgresMsPerValidation, 3),
          num(w.activityRowsPerValidation, 3), num(w.gcMsPerValidation, 4), num(w.eventLoopLagMaxMs, 1)])]
  })
  return [
    ...head(['scenario', 'Redis calls / validation', 'PG queries / validation', 'PG ms / validation (service-side)',
      'last_activity_at rows written / validation', 'GC ms / validation', 'max event-loop delay ms']),
    ...rows,
    '',
    `redis-server CPU per hit validation: ${num(s.redisCpuUsPerHit)} µs.`,
    'Medians over rounds of the measured runs. The event-loop delay is prom-client\'s, sampled at 10 ms resolution.'
  ]
}

function profiles (ps: ProfileSummary[]): string[] {
  return ps.flatMap(p => [
    '', `### ${p.process} (${num(p.busySeconds, 1)} s of CPU)`, '',
    ...head(['area', 'self %']), ...p.areas.slice(0, 10).map(a => row([a.name, num(a.percent, 1)])), '',
    ...head(['function', 'self %']), ...p.functions.map(f => row([`\`${f.name}\``, num(f.percent, 1)]))
  ])
}

export function renderMarkdown (input: ReportInput): string {
  const meta = Object.entries(input.meta).map(([k, v]) => `- ${k}: ${v}`)
  return [
    '# session-validator benchmark', '', ...meta, '',
    '## Throughput (closed loop, medians over rounds)', '', ...scenarios(input.summary), '',
    '## Work behind each validation (from the service\'s /metrics)', '', ...work(input.summary), '',
    '## Latency at a fixed rate', '', ...atRate(input.summary, Number(input.meta['fixed rate'])), '',
    '## Forward auth through nginx', '', ...forwardAuth(input.summary), '',
    '## Redis memory', '', ...memory(input.memory), '',
    '## Mixed: cold cache to steady state', '', ...mixed(input.mixedRounds), '',
    '## Soak', '', ...soak(input.soak), '',
    '## Targets', '', ...targets(input.targets),
    ...(input.profiles.length === 0 ? [] : ['', '## CPU profiles (self time, share of busy time)', ...profiles(input.profiles)]),
    ''
  ].join('\n')
}
