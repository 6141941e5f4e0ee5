import type { ProfileSummary } from './cpu-profile.ts'
import type { MemoryBreakdown } from './redis-memory.ts'
import type { L1Memory } from './l1-memory.ts'
import type { DeployResult } from './scenarios/deploy.ts'
import { FIRST_SECONDS } from './scenarios/deploy.ts'
import type { MixedResult } from './scenarios/mixed.ts'
import type { RevokeResult } from './scenarios/revoke.ts'
import type { SoakResult } from './scenarios/soak.ts'
import type { CacheAnswers } from './scrape.ts'
import type { Summary } from './summary.ts'
import type { Target } from './targets.ts'

export interface ReportInput {
  meta: Record<string, string | number | boolean>
  summary: Summary
  mixedRounds: MixedResult[]
  soak: SoakResult | undefined
  memory: MemoryBreakdown | undefined
  l1Memory: L1Memory | undefined
  deploy: DeployResult | undefined
  revoke: RevokeResult | undefined
  targets: Target[]
  profiles: ProfileSummary[]
}

const dash = '–'
const NOT_RUN = 'Not run.'
const num = (v: number | null | undefined, digits = 0) => v === null || v === undefined || !Number.isFinite(v) ? dash : v.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const ms = (v: number) => num(v, 2)
const pct = (v: number | null | undefined) => v === null || v === undefined || !Number.isFinite(v) ? dash : `${(v * 100).toFixed(2)} %`
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`
const head = (cells: string[]) => [row(cells), row(cells.map(() => '---'))]

function scenarios (s: Summary): string[] {
  if (s.rows.length === 0) return [NOT_RUN]
  return [
    ...head(['scenario', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', '× ceiling', 'server CPU µs / req', 'Postgres CPU µs / req', 'hit ratio', 'answered from L1', 'PG queries / validation']),
    ...s.rows.map(r => row([r.scenario, num(r.rps), ms(r.p50), ms(r.p99), ms(r.p999), num(r.ratioToCeiling, 3), num(r.cpuUs), num(r.postgresCpuUs),
      num(r.hitRatio, 3), pct(r.localShare), r.floor === null ? num(r.queriesPerValidation, 4) : `${num(r.queriesPerValidation, 4)} (floor ${num(r.floor, 4)})`])),
    '',
    'L2 hit: the service with L1 off (LOCAL_CACHE_MAX_ENTRIES=0), every answer from Redis. L1 hit: the hit set in the instance\'s own memory. ' +
      'express-session + connect-redis: GET with its signed cookie, the session read from Redis (and touched) per request.'
  ]
}

function atRate (s: Summary, rate: number): string[] {
  if (s.atRate.length === 0) return [NOT_RUN]
  return [
    ...head(['route', 'achieved req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'server CPU µs / req', 'event-loop delay p50 / p99 / max ms', 'answered from L1', 'generator max late ms']),
    ...s.atRate.map(r => row([r.scenario, num(r.achievedRps), ms(r.p50), ms(r.p99), ms(r.p999), num(r.cpuUs),
      `${ms(r.loopP50Ms)} / ${ms(r.loopP99Ms)} / ${ms(r.loopMaxMs)}`, pct(r.localShare), ms(r.maxLateMs)])),
    '',
    `Open loop at ${num(rate)} req/s; latency counts from each request's scheduled send time. The event-loop delay is each server's own ` +
      '(prom-client\'s monitorEventLoopDelay at 10 ms resolution, read and reset by a scrape before and after each run; the ceiling measures it the same way); ' +
      'p50 and p99 are medians over rounds, max the largest seen.'
  ]
}

function runtime (s: Summary): string[] {
  const rows = [
    ...s.rows.flatMap(r => r.runtime === undefined ? [] : [[r.scenario, r.runtime] as const]),
    ...s.atRate.flatMap(r => r.runtime === undefined ? [] : [[`${r.scenario} at the fixed rate`, r.runtime] as const])
  ]
  if (rows.length === 0) return [NOT_RUN]
  return [
    ...head(['scenario', 'JS heap bytes allocated / req', 'promoted bytes / req', 'GC pauses (count)', 'GC pause p99 / max ms', 'GC µs / req', 'event-loop delay p99 / max ms']),
    ...rows.map(([name, r]) => row([name, num(r.bytesPerRequest), num(r.promotedPerRequest, 1), num(r.gcCount), `${ms(r.gcP99Ms)} / ${ms(r.gcMaxMs)}`,
      num(r.gcUsPerRequest, 2), `${ms(r.loopP99Ms)} / ${ms(r.loopMaxMs)}`])),
    '',
    'From each server\'s runtime probe (`bench/runtime-probe.ts`, preloaded with `--import` into every server, the ceiling included): ' +
      'allocation from V8\'s heap statistics around each GC (GCProfiler), each GC\'s pause, and the event-loop delay at 1 ms resolution, over the measured run. ' +
      'Medians over rounds; the maxima are the largest seen in any round.'
  ]
}

function forwardAuth (s: Summary): string[] {
  const f = s.forwardAuth
  if (f === undefined) return ['Not run (left out, or nginx is not installed).']
  return [
    ...head(['path', 'req/s', 'p99 ms']),
    row(['nginx → app', num(f.directRps), ms(f.directP99)]),
    row(['nginx → GET /forward-auth (L1 hit) → app', num(f.throughRps), ms(f.throughP99)]),
    '',
    `**Forward auth / direct: ${num(f.ratio, 3)}** (median of each round's ratio). One nginx worker, the README's configuration, ` +
      'the same GET with a session cookie to both; the app is an nginx `return 200`, so the difference is the auth subrequest and the service ' +
      '(its defaults: L1 on, the hit set in memory).'
  ]
}

function memory (m: MemoryBreakdown | undefined): string[] {
  if (m === undefined) return [NOT_RUN]
  const lines = [
    `**${num(m.bytesPerSession)} bytes per cached session**: INFO used_memory (less the connections' buffers) grew ${num(m.usedMemoryDelta)} bytes for ${num(m.sessions)} cached sessions ` +
      `(${num(m.entryKeys)} entry keys, ${num(m.indexKeys)} user-index keys, ${num(m.otherKeys)} other).`,
    '',
    ...head(['key kind', 'keys', 'MEMORY USAGE each (sampled)', 'encodings (sampled)']),
    ...m.samples.map(s => row([s.kind, num(s.keys), num(s.bytesEach), Object.entries(s.encodings).map(([e, n]) => `${e} ×${n}`).join(', ')]))
  ]
  if (m.example !== undefined) {
    lines.push('', `One entry: key ${m.example.keyBytes} bytes, value ${m.example.valueBytes} bytes (one string: src/sessions/entry-codec.ts).`)
  }
  return lines
}

function l1Memory (m: L1Memory | undefined): string[] {
  if (m === undefined) return [NOT_RUN]
  const mib = (bytes: number) => num(bytes / 2 ** 20, 1)
  return [
    `**${num(m.sessions)} sessions of the seeded shape in the memory tier: ${mib(m.measuredBytesPerSession * m.sessions)} MiB measured** ` +
      `(${num(m.measuredBytesPerSession)} bytes each: the JS heap and the typed arrays' memory the entries added, after a full GC), ` +
      `against ${mib(m.defaultBytes)} MiB allowed by default (LOCAL_CACHE_MAX_BYTES, with LOCAL_CACHE_MAX_ENTRIES ${num(m.defaultEntries)}). ` +
      `The L1's own count, which that bound applies to: ${num(m.countedBytesPerSession)} bytes each.`,
    '',
    'Measured in a process of its own (`bench/l1-memory.ts`, the built code).'
  ]
}

function mixed (rounds: MixedResult[], s: Summary): string[] {
  const last = rounds.at(-1)
  if (last === undefined) return [NOT_RUN]
  return [
    ...head(['window (last round)', 'req/s', 'hit ratio', 'PG queries / validation', 'floor (first sight of a session)']),
    ...last.windows.map((w, i) => row([i + 1, num(w.rps), num(w.hitRatio, 3), num(w.queriesPerValidation, 4), num(w.floor, 4)])),
    '',
    'The floor is the expected share of validations that are the first of their session in this run: no cache can answer those without Postgres. ' +
      `The instance runs with its defaults (L1 on) and is restarted before each round; its restarts moved the epoch ${num(s.mixedEpochMoves)} times ` +
      '(0: each start caught up from the change log).'
  ]
}

function soak (s: SoakResult | undefined): string[] {
  if (s === undefined) return [NOT_RUN]
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

function answers (name: string, a: CacheAnswers, extra: string): string {
  return row([name, num(a.validations), pct(a.hitRatio), num(a.localHits), num(a.redisHits), num(a.misses), num(a.bypasses), extra])
}

function deploy (d: DeployResult | undefined): string[] {
  if (d === undefined) return [NOT_RUN]
  const r = d.restarting
  return [
    `${num(d.seconds)} s of hit traffic (uniform over the hit set), half the connections on each instance; \`${r.name}\` restarted every ${d.restartEverySeconds} s ` +
      `(${r.lifetimes.length} starts, ready after ${r.lifetimes.map(l => num(l.readyMs)).join(', ')} ms) and took traffic from ready to stop.`,
    '',
    ...head(['instance', 'validations', 'hit ratio', 'L1 hits', 'Redis hits', 'misses', 'bypasses', 'epoch moves / change-log replays']),
    answers(`${d.stable.name} (stable, L1 off)`, d.stable.answers, `${num(d.stable.epochMoves)} moves, ${num(d.stable.epochInvalidations)} epoch changes seen`),
    answers(`${r.name} (restarting, L1 on): all lifetimes`, r.answers, `${num(r.epochMoves)} moves / ${num(r.replays)} replays`),
    answers(`${r.name}: first ${FIRST_SECONDS} s after each start`, r.first, ''),
    ...r.lifetimes.map((l, i) => answers(`${r.name}: lifetime ${i + 1}`, l.all, `${num(l.epochMoves)} / ${num(l.replays)}`)),
    '',
    `Hit ratio: cache answers over validations (a bypass reaches Postgres as a miss does). Bystander \`${d.bystander.name}\` (L1 on, no traffic): ` +
      `${num(d.bystander.entriesBefore)} sessions in memory before, ${num(d.bystander.entriesAfter)} after; ${num(d.bystander.leaseLosses)} lease losses, ` +
      `${num(d.bystander.epochInvalidations)} epoch changes seen.`
  ]
}

function revoke (v: RevokeResult | undefined): string[] {
  if (v === undefined) return [NOT_RUN]
  const instances = v.runtimes.map((r, i) => row([i === 0 ? 'revoking instance' : `peer ${i}`, num(r.gcCount), `${ms(r.gcP99Ms)} / ${ms(r.gcMaxMs)}`, `${ms(r.loopP99Ms)} / ${ms(r.loopMaxMs)}`]))
  return [
    ...head(['instances', 'revokes', 'p50 ms', 'p99 ms', 'max ms', 'mean ms', 'of which fan-out, mean ms', 'fan-outs acknowledged', 'waited out the lease', 'acks / revoke']),
    row([v.instances, num(v.revokes), ms(v.p50), ms(v.p99), ms(v.max), ms(v.mean), ms(v.fanOutMeanMs), num(v.acknowledged), num(v.leaseExpired), num(v.acksPerRevoke, 2)]),
    '',
    'Sequential POST /sessions/revoke through the first instance, each session validated twice on every instance first; the round trip is the client\'s ' +
      '(node:http, keep-alive), the fan-out the service\'s own session_revoke_wait_seconds (commit until every peer acknowledged). ' +
      `Second validations not answered from memory: ${num(v.notLocalBefore)}; validations answered 200 after a revoke returned: ${num(v.validAfter)} (must be 0).`,
    '',
    ...head(['instance, during the measured revokes', 'GC pauses', 'GC pause p99 / max ms', 'event-loop delay p99 / max ms']),
    ...instances,
    '',
    'A revoke waits on every instance\'s event loop (each acknowledges the barrier): a pause on any of them is in its latency.'
  ]
}

function targets (ts: Target[]): string[] {
  const result = (t: Target) => t.result === 'pass' ? 'PASS' : t.result === 'miss' ? '**MISS**' : 'not run'
  return [
    ...head(['target', 'issue', 'measured', 'limit', 'result', 'note']),
    ...ts.map(t => row([t.name, `#${t.issue}`, num(t.measured, t.limit < 1 ? 4 : 2), `${t.atLeast ? '≥' : '≤'} ${t.limit}`, result(t), t.result === 'not run' ? '' : t.note]))
  ]
}

function work (s: Summary): string[] {
  const fmt = (r: Record<string, number>, digits: number) => Object.entries(r).map(([k, v]) => `${k} ${num(v, digits)}`).join(', ') || dash
  const names = { local: 'L1 hit', lifecycle: 'L1 hit, idle + sliding on', hit: 'L2 hit', miss: 'miss', localAtRate: 'L1 hit at fixed rate', hitAtRate: 'L2 hit at fixed rate' } as const
  // these instances run with L1 off: no memory, no lease to lose
  const l1Off = new Set(['hit', 'miss', 'hitAtRate'])
  const rows = (['local', 'lifecycle', 'hit', 'miss', 'localAtRate', 'hitAtRate'] as const).flatMap(name => {
    const w = s.work[name]
    return w === undefined
      ? []
      : [row([names[name], l1Off.has(name) ? dash : pct(w.localShare), l1Off.has(name) ? dash : num(w.leaseLosses), fmt(w.redisCommandsPerValidation, 3), fmt(w.postgresQueriesPerValidation, 4), fmt(w.postgresMsPerValidation, 3),
          num(w.activityRowsPerValidation, 3), num(w.gcMsPerValidation, 4), `${ms(w.eventLoop.p99Ms)} / ${ms(w.eventLoop.maxMs)}`])]
  })
  if (rows.length === 0) return [NOT_RUN]
  return [
    ...head(['scenario', 'answered from L1', 'lease losses', 'Redis calls / validation', 'PG queries / validation', 'PG ms / validation (service-side)',
      'last_activity_at rows written / validation', 'GC ms / validation', 'event-loop delay p99 / max ms']),
    ...rows,
    '',
    `redis-server CPU per L2 hit validation: ${num(s.redisCpuUsPerHit)} µs.`,
    'Medians over rounds of the measured runs (lease losses: summed). The event-loop delay is prom-client\'s, sampled at 10 ms resolution.'
  ]
}

function profiles (ps: ProfileSummary[]): string[] {
  return ps.flatMap(p => [
    '', `### ${p.process} (${num(p.busySeconds, 1)} s of CPU)`, '',
    ...head(['area', 'self %']), ...p.areas.slice(0, 10).map(a => row([a.name, num(a.percent, 1)])), '',
    ...head(['function', 'self %']), ...p.functions.map(f => row([`\`${f.name}\``, num(f.percent, 1)])),
    ...(p.allocations === undefined
      ? []
      : ['', `Allocations sampled in the same run: ${num(p.allocations.megabytes, 1)} MB (sampling, every 16 KiB on average)`, '',
          ...head(['function', 'allocated %']), ...p.allocations.functions.map(f => row([`\`${f.name}\``, num(f.percent, 1)]))])
  ])
}

export function renderMarkdown (input: ReportInput): string {
  const meta = Object.entries(input.meta).map(([k, v]) => `- ${k}: ${v}`)
  return [
    '# session-validator benchmark', '', ...meta, '',
    '## Throughput (closed loop, medians over rounds)', '', ...scenarios(input.summary), '',
    '## Work behind each validation (from the service\'s /metrics)', '', ...work(input.summary), '',
    '## Latency at a fixed rate', '', ...atRate(input.summary, Number(input.meta['fixed rate'])), '',
    '## Runtime: allocation, GC pauses, event-loop delay (beside the ceiling)', '', ...runtime(input.summary), '',
    '## Forward auth through nginx', '', ...forwardAuth(input.summary), '',
    '## Deploy: a peer restarting under hit traffic', '', ...deploy(input.deploy), '',
    '## Revoke latency, all instances healthy', '', ...revoke(input.revoke), '',
    '## Redis memory', '', ...memory(input.memory), '',
    '## Memory tier (L1) size', '', ...l1Memory(input.l1Memory), '',
    '## Mixed: cold cache to steady state', '', ...mixed(input.mixedRounds, input.summary), '',
    '## Soak', '', ...soak(input.soak), '',
    '## Targets', '', ...targets(input.targets),
    ...(input.profiles.length === 0 ? [] : ['', '## CPU profiles (self time, share of busy time)', ...profiles(input.profiles)]),
    ''
  ].join('\n')
}
