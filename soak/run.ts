// npm run soak: the fleet in production conditions on this machine — three
// instances under mixed traffic, their dependencies faulted one fault after
// another, Prometheus evaluating the shipped rules — and a table, fault by
// fault. Exits 1 on any wrong answer, crash, leak, slow recovery or alert
// out of time; 2 when the soak itself could not run.
import { mkdirSync, writeFileSync } from 'node:fs'
import { setPriority } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanupOnSignals, runCleanup } from '../bench/cleanup.ts'
import { snapshotBuild } from '../bench/dist.ts'
import { judgeAlerts, watchAlerts } from './alerts.ts'
import { failures as createFailures, type Failure } from './failures.ts'
import { FAULTS, type FaultContext } from './faults.ts'
import { collectGarbage } from './collect-garbage.ts'
import { growth, MIN_POINTS } from './leaks.ts'
import { parseOptions } from './options.ts'
import { clock, mb, table, type Row } from './report.ts'
import { intervalSeconds, plan as makePlan } from './schedule.ts'
import { population } from './sessions.ts'
import { retireInstances } from './instance.ts'
import { INSTANCES, startStack } from './stack.ts'
import { tally as createTally } from './tally.ts'
import { watchStalls } from './stalls.ts'
import { timeline as createTimeline } from './timeline.ts'
import { createTraffic } from './traffic.ts'
import { countConnections, watch, type Connections, type EpochMoves } from './watch.ts'

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url))
const HIT_RATIO_FLOOR = 0.99
// too few counted validations say nothing about a ratio of 0.99
const MIN_COUNTED = 100
// after the traffic stops, the pools' idle connections close (postgres.js
// idle_timeout, 60 s in src/db/postgres.ts): what is still open past this is held
const SETTLE_MS = 75_000
// memory once idle: V8 gives back what a burst took within seconds of idling;
// the samples from this long after the traffic stopped, for at least this long
const IDLE_FROM_MS = 5000
const MIN_IDLE_MS = 30_000
// a leak of a kilobyte a request shows within minutes; anything smaller only in a long run
const LEAK_TOLERANCE = { heap: { share: 0.1, bytes: 8 * 1048576 }, rss: { share: 0.1, bytes: 16 * 1048576 } }
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
// The soak and every process it starts (children inherit it) get the CPU a
// production host gives them: on a machine shared with other work, a service
// waiting for a core times out on Redis and Postgres as if they had failed.
const NICE = -10

function prioritise (): boolean {
  try {
    setPriority(NICE)
    return true
  } catch {
    return false
  }
}

async function soak (): Promise<number> {
  const o = parseOptions(process.argv.slice(2))
  if (o === undefined) return 0
  // first of all on Ctrl-C: no instance is started again while all are stopped
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, retireInstances)
  cleanupOnSignals('stopping the soak\'s servers and removing their folders')
  const prioritised = prioritise()
  const t0 = performance.now()
  const now = () => performance.now() - t0
  const log = (line: string) => process.stderr.write(`[${clock(now())}] ${line}\n`)
  const resultsDir = o.resultsDir ?? join(RESULTS, new Date().toISOString().replace(/[:.]/g, '-'))
  mkdirSync(resultsDir, { recursive: true })
  snapshotBuild()

  const interval = intervalSeconds(o.timeScale)
  const plan = makePlan({ minutes: o.minutes, timeScale: o.timeScale, faults: o.faults, instances: INSTANCES.length })
  log(`soak: ${plan.steps.length} faults over ${(plan.totalMs / 60_000).toFixed(1)} minutes (and set-up, and up to ${SETTLE_MS / 1000} s of settling), ` +
    `${o.rate} validations/s, time scale ${o.timeScale}, at nice ${prioritised ? NICE : '0 (not permitted)'}; logs in ${resultsDir}`)

  const stack = await startStack({ timeScale: o.timeScale, intervalSeconds: interval, logDir: resultsDir, now, log })
  const people = population(stack.sql)
  for (let i = 0; i < Math.ceil(o.sessions / 4); i++) await people.addUser(4)
  const timeline = createTimeline()
  const tally = createTally()
  const failures = createFailures(log)
  const traffic = createTraffic({ rate: o.rate, instances: stack.instances, population: people, timeline, tally, failures, redisClient: stack.redisClient, sql: stack.sql, sessions: o.sessions, now, log })

  const start = now()
  traffic.start()
  const stalls = watchStalls(stack.sql, timeline, now)
  const watched = watch({ instances: stack.instances, sql: stack.sql, redis: stack.redisClient, timeline, memoryEveryMs: 2000, connectionsEveryMs: 5000, now })
  const alerts = watchAlerts(stack.prometheus, Math.min(1000, interval * 1000), now, log)
  log(`traffic on; healthy baseline for ${plan.baselineMs / 1000} s`)
  await sleep(plan.baselineMs)
  const baselineEnd = now()
  const baseline = await countConnections(stack.sql, stack.redisClient, stack.instances, now())

  const ctx: FaultContext = { stack, traffic, timeline, restartEveryMs: plan.restartEveryMs, now, log }
  for (const [i, step] of plan.steps.entries()) {
    const fault = FAULTS[step.kind]
    const record = timeline.begin(step, fault.title(step, ctx), now(), fault.postgres(step, ctx))
    log(`fault ${i + 1}/${plan.steps.length}: ${record.title}`)
    await fault.run(step, ctx)
    record.end = now()
    log(`  over after ${((record.end - record.start) / 1000).toFixed(1)} s; recovering for ${step.recoverMs / 1000} s`)
    await sleep(step.recoverMs)
  }
  const faultsEnd = now()
  await traffic.stop()
  // Every alert has been judged by now (each fault's recovery outlasts its
  // clear deadline). Prometheus' scrapes would keep the instances allocating
  // while idle, and V8 collects an idle heap only when allocation has calmed.
  await alerts.stop()
  await stack.prometheus.stop()
  log(`traffic off after ${traffic.validations.toLocaleString('en')} validations; Prometheus stopped; waiting for idle connections to close`)
  const settled = await settle(stack, baseline)
  await sleep(Math.max(0, faultsEnd + IDLE_FROM_MS + MIN_IDLE_MS - now()))
  // A quiet process may not collect for minutes: a full collection in each
  // instance, then a memory sample or two, so that the idle heap is what is live.
  await Promise.all(stack.instances.map(inst => collectGarbage(inst.inspectPort)
    .catch((err: Error) => log(`instance ${inst.name}: no garbage collection through its inspector (${err.message})`))))
  await sleep(2 * 2000 + 500)
  await Promise.all([watched.stop(), stalls.stop()])

  // ---- judging -------------------------------------------------------------
  const problems: string[] = []
  for (const inst of stack.instances) {
    for (const exit of inst.exits) problems.push(`instance ${exit.instance} exited on its own at ${clock(exit.at)} (code ${exit.code}, signal ${exit.signal}):\n${exit.tail.replace(/^/gm, '      ')}`)
  }
  for (const [what, k] of failures.byKind()) {
    problems.push(`${what}: ${k.count.toLocaleString('en')}× — first: ${k.first.map((f: Failure) => `${clock(f.at)}${f.instance === undefined ? '' : ` ${f.instance}`}${f.detail === undefined ? '' : ` (${f.detail})`}`).join(', ')}`)
  }

  const firstFault = timeline.faults[0]?.start ?? faultsEnd
  const stallsIn = (from: number, to: number) => timeline.stalls.filter(x => x.from >= from && x.from < to).length
  const movesIn = (from: number, to: number) => watched.epochMoves.filter(m => m.at >= from && m.at < to).reduce((n, m) => n + m.count, 0)
  const rows: Row[] = [{ at: start, title: 'healthy baseline', counts: tally.sum(start, firstFault), wrong: failures.between(start, firstFault), hitRatio: undefined, stalls: stallsIn(start, firstFault), epochMoves: movesIn(start, firstFault), alerts: judgeAlerts(alerts.spans, { start, end: baselineEnd, next: firstFault }, [], plan.clearDeadlineMs).seen, ok: failures.between(start, firstFault) === 0 }]
  timeline.faults.forEach((f, i) => {
    const end = f.end!
    const next = timeline.faults[i + 1]?.start ?? faultsEnd
    const from = end + plan.hitRatioDelayMs
    const ratioCounts = tally.sum(from, Math.min(next, from + plan.hitRatioWindowMs))
    const ratio = ratioCounts.counted === 0 ? NaN : ratioCounts.hits / ratioCounts.counted
    const verdict = judgeAlerts(alerts.spans, { start: f.start, end, next }, f.step.expected, plan.clearDeadlineMs)
    const rowProblems = verdict.failures.map(v => `fault ${i + 1} (${f.title}): ${v}`)
    if (ratioCounts.counted < MIN_COUNTED) rowProblems.push(`fault ${i + 1} (${f.title}): only ${ratioCounts.counted} validations of cached sessions ${plan.hitRatioDelayMs / 1000}–${(plan.hitRatioDelayMs + plan.hitRatioWindowMs) / 1000} s after it: too few to judge the hit ratio`)
    else if (ratio < HIT_RATIO_FLOOR) rowProblems.push(`fault ${i + 1} (${f.title}): hit ratio ${ratio.toFixed(3)} ${plan.hitRatioDelayMs / 1000}–${(plan.hitRatioDelayMs + plan.hitRatioWindowMs) / 1000} s after it ended (floor ${HIT_RATIO_FLOOR})`)
    const wrong = failures.between(f.start, next)
    problems.push(...rowProblems)
    rows.push({ at: f.start, title: f.title, counts: tally.sum(f.start, next), wrong, hitRatio: { ratio, counted: ratioCounts.counted }, stalls: stallsIn(f.start, next), epochMoves: movesIn(f.start, next), alerts: verdict.seen, ok: rowProblems.length === 0 && wrong === 0 })
  })

  // leaks: each instance's process alive at the end, over the last half of
  // the run (or of its own life, if it started later)
  const leakLines: string[] = []
  stack.instances.forEach((inst, index) => {
    const from = Math.max(start + (faultsEnd - start) / 2, inst.startedAt + (faultsEnd - inst.startedAt) / 2)
    const mine = watched.memory.filter(m => m.instance === index && m.generation === inst.generation)
    const half = mine.filter(m => m.at >= from && m.at <= faultsEnd)
    // idle: the lowest once the traffic has stopped (a sawtooth goes on, slowly)
    const idle = mine.filter(m => m.at >= faultsEnd + IDLE_FROM_MS)
    const judge = (key: 'heap' | 'rss') => growth(half.map(m => ({ at: m.at, value: m[key] })), Math.min(...idle.map(m => m[key])), LEAK_TOLERANCE[key])
    const heap = judge('heap')
    const rss = judge('rss')
    leakLines.push(`instance ${inst.name} (from ${clock(from)}, ${heap.points} samples): heap ${mb(heap.earlier)} → ${mb(heap.later)}, ${mb(heap.idle)} idle; RSS ${mb(rss.earlier)} → ${mb(rss.later)}, ${mb(rss.idle)} idle`)
    if (heap.points < MIN_POINTS) problems.push(`instance ${inst.name}: too few memory samples in the last half (${heap.points}) to judge leaks`)
    if (idle.length < MIN_POINTS) problems.push(`instance ${inst.name}: too few memory samples once idle (${idle.length}) to judge leaks`)
    if (heap.growing) problems.push(`instance ${inst.name}: heap still growing over the last half (floor ${mb(heap.earlier)} → ${mb(heap.later)}, fitted rise ${mb(heap.rise)}, ${mb(heap.idle)} once idle)`)
    if (rss.growing) problems.push(`instance ${inst.name}: RSS still growing over the last half (floor ${mb(rss.earlier)} → ${mb(rss.later)}, fitted rise ${mb(rss.rise)}, ${mb(rss.idle)} once idle)`)
  })

  const connectionLines = stack.instances.map((inst, i) => {
    const b = baseline.postgres[i]!
    const e = settled.postgres[i]!
    return `instance ${inst.name}: Postgres pool ${b.pool} under traffic → ${e.pool}, listener ${b.listener} → ${e.listener}, coherence ${b.coherence} → ${e.coherence}, starting ${b.other} → ${e.other}; Redis clients ${baseline.redis[i]} → ${settled.redis[i]}`
  })
  problems.push(...connectionProblems(baseline, settled, stack.instances.map(i => i.name)))

  const all = tally.sum(start, faultsEnd)
  const report = [
    `soak: ${INSTANCES.length} instances, ${o.rate} validations/s, time scale ${o.timeScale}${o.timeScale === 1 ? ' (real time)' : ` (the alert rules' windows and for: and the documented alert times divided by ${o.timeScale}, Prometheus every ${interval} s; the service at its own pace)`}, ` +
      `${((faultsEnd - start) / 60_000).toFixed(1)} minutes of traffic, ${traffic.validations.toLocaleString('en')} validations`,
    '',
    table(rows),
    '',
    `hit ratio: validations of sessions answered 200 before whose entry was filled less than the cache TTL ago and after Redis last evicted, ${plan.hitRatioDelayMs / 1000}–${(plan.hitRatioDelayMs + plan.hitRatioWindowMs) / 1000} s after each fault ended (floor ${HIT_RATIO_FLOOR})`,
    `epoch moves (each voids the shared cache and what memory copied from it, fleet-wide), by cause: ${epochCauses(watched.epochMoves)}`,
    `answers without x-session-cache: ${all.noCacheHeader.toLocaleString('en')}; requests cut or answered 503 by an instance being stopped or killed (not judged): ${all.cut.toLocaleString('en')}`,
    `machine stalls (the soak's timers over 0.5 s late or its SELECT 1 over 1 s, no fault on): ${timeline.stalls.length}${timeline.stalls.length === 0 ? '' : `, longest ${(Math.max(...timeline.stalls.map(x => x.to - x.from)) / 1000).toFixed(1)} s; 503s during them, not held against the service: ${all.stalled503.toLocaleString('en')}`}`,
    '',
    'memory (floors of the two quarters of the last half, 10th percentiles, and the lowest once idle after the traffic stopped):',
    ...leakLines.map(l => `  ${l}`),
    `connections (baseline under traffic → once idle, at most ${SETTLE_MS / 1000} s after the traffic stopped):`,
    ...connectionLines.map(l => `  ${l}`),
    `  unattributed: Postgres ${settled.unattributed.postgres}, Redis ${settled.unattributed.redis}`,
    '',
    problems.length === 0 ? 'PASS: no wrong answer, crash, leak, slow recovery or alert out of time' : `FAIL: ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
    ...problems.map(p => `  - ${p}`)
  ].join('\n')
  process.stdout.write(report + '\n')
  writeFileSync(join(resultsDir, 'report.md'), report + '\n')
  writeFileSync(join(resultsDir, 'seconds.csv'), tally.csv())
  writeFileSync(join(resultsDir, 'memory.csv'), ['ms,instance,generation,rss,heap', ...watched.memory.map(m => [Math.round(m.at), INSTANCES[m.instance], m.generation, m.rss, m.heap].join(','))].join('\n') + '\n')
  return problems.length === 0 ? 0 : 1
}

function epochCauses (moves: EpochMoves[]): string {
  const by = new Map<string, number>()
  for (const m of moves) by.set(m.cause, (by.get(m.cause) ?? 0) + m.count)
  return by.size === 0 ? 'none' : [...by].map(([cause, n]) => `${cause} ${n}`).join(', ')
}

function settledWell (baseline: Connections, c: Connections): boolean {
  return connectionProblems(baseline, c, c.redis.map(String)).length === 0
}

// Back to an idle instance's connections once the traffic has stopped: one
// listener and one prober each (their application_names), no pool connection
// left open (the pool closes idle ones), and as many Redis clients as in the
// baseline under traffic (they stay open).
function connectionProblems (baseline: Connections, end: Connections, names: string[]): string[] {
  const out: string[] = []
  names.forEach((name, i) => {
    const e = end.postgres[i]!
    if (e.listener !== 1 || e.coherence !== 1) out.push(`instance ${name}: ${e.listener} listener and ${e.coherence} coherence connections to Postgres at the end (one each expected)`)
    if (e.pool + e.other > 0) out.push(`instance ${name}: ${e.pool + e.other} pool connections to Postgres still open ${SETTLE_MS / 1000} s after the traffic stopped`)
    if (end.redis[i] !== baseline.redis[i]) out.push(`instance ${name}: ${end.redis[i]} Redis clients at the end, ${baseline.redis[i]} at baseline`)
  })
  if (end.unattributed.postgres > 0) out.push(`${end.unattributed.postgres} Postgres backends of the service that no live connection of an instance accounts for`)
  if (end.unattributed.redis > 0) out.push(`${end.unattributed.redis} Redis clients that no live connection of an instance accounts for`)
  return out
}

async function settle (stack: Awaited<ReturnType<typeof startStack>>, baseline: Connections): Promise<Connections> {
  const until = performance.now() + SETTLE_MS
  for (;;) {
    const c = await countConnections(stack.sql, stack.redisClient, stack.instances, 0)
    if (settledWell(baseline, c) || performance.now() > until) return c
    await sleep(2000)
  }
}

let code = 2
try {
  code = await soak()
} catch (err) {
  console.error(`soak could not run: ${(err as Error).stack ?? err}`)
} finally {
  retireInstances()
  await runCleanup()
}
process.exit(code)
