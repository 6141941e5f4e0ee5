import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setPriority } from 'node:os'
import t from 'tap'
import { parse, stringify } from 'yaml'
import { freshDatabase, type TestDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, ownRedis, sharedRedisUrl } from '../helpers/redis.js'
import { faultProxy } from '../helpers/fault-proxy.js'
import { startServer, type ServerProcess } from '../helpers/process.js'
import { createSession, createUser, type TestSession } from '../helpers/fixtures.js'
import { freePort, sleep, waitFor } from '../helpers/ports.js'
import { startPrometheus } from '../helpers/prometheus.js'

// Every alert in deploy/prometheus/alerts.yml, proven against the real service:
// a real Prometheus scrapes real instances (each its own process and port),
// with the rules loaded. Every instance first serves normal traffic long
// enough to fill the longest window with healthy history; then each is put in
// one condition for real, all at once; each alert must go pending, then fire,
// for its condition and no other, within the time docs/operations.md documents; then
// every condition ends, and each alert must clear within its documented time.
// One more instance serves normal traffic all along and must raise nothing.
// The one liberty taken: time runs 10 times faster, uniformly: every range
// window and every `for:` 10 times shorter ([1m] is [6000ms], `for: 30s` is
// 3000ms), Prometheus scraping and evaluating every 0.5 s where the documented
// times assume 5 s. The expressions are otherwise untouched. What the service
// itself takes (its heartbeat, its breaker, a restart) runs at its own pace,
// which the slack below allows for.

// tap's 180 s per file is too short for conditions that take minutes in the
// rules' own time, a tenth of it here, on a loaded machine
t.setTimeout(360_000)

const started = performance.now()
const FACTOR = 10
const SCRAPE_SECONDS = 5 / FACTOR
// Service-side delays that do not shrink with the factor, and a loaded machine.
const SLACK_S = 8

interface Rule { alert: string, expr: string, for?: string }
interface Rules { groups: Array<{ name: string, rules: Rule[] }> }

const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 }
const seconds = (d: string) => {
  const m = /^(\d+)([smhd])$/.exec(d)
  if (m === null) throw new Error(`a duration the shortening does not know: ${d}`)
  return Number(m[1]) * UNIT[m[2]!]!
}
const shorter = (d: string) => `${seconds(d) * 1000 / FACTOR}ms`
const rules = parse(readFileSync(new URL('../../deploy/prometheus/alerts.yml', import.meta.url), 'utf8')) as Rules
const shortened: Rules = {
  groups: rules.groups.map(g => ({
    ...g,
    rules: g.rules.map(r => ({
      ...r,
      expr: r.expr.replace(/\[(\w+)\]/g, (_, d: string) => `[${shorter(d)}]`),
      ...(r.for !== undefined ? { for: shorter(r.for) } : {})
    }))
  }))
}
const alertNames = rules.groups.flatMap(g => g.rules.map(r => r.alert))

// docs/operations.md's table, in real seconds at 5 s scrapes and evaluations: at the
// latest, after the condition starts, each alert fires; after it ends, it
// clears. (CallerThrottled and CacheEpochChurn count from their first and
// last event: a 429, an epoch move. CircuitOpen fires 70 s after the circuit
// opens, which takes up to 10 s of failing calls.)
const FIRES_WITHIN: Record<string, number> = {
  SessionValidatorTargetDown: 40,
  SessionValidatorAllTargetsDown: 40,
  SessionValidatorRedisNotAnswering: 42,
  SessionValidatorRedisUnreachable: 55,
  SessionValidatorCircuitOpen: 80,
  SessionValidatorValidationSlow: 315,
  SessionValidatorCacheHitRatioLow: 460,
  SessionValidatorPostgresErrors: 75,
  SessionValidatorHigh503Rate: 80,
  SessionValidatorCallerThrottled: 10,
  SessionValidatorCacheEpochChurn: 310
}
const CLEARS_WITHIN: Record<string, number> = {
  SessionValidatorTargetDown: 10,
  SessionValidatorAllTargetsDown: 10,
  SessionValidatorRedisNotAnswering: 11,
  SessionValidatorRedisUnreachable: 35,
  SessionValidatorCircuitOpen: 11,
  SessionValidatorValidationSlow: 40,
  SessionValidatorCacheHitRatioLow: 40,
  SessionValidatorPostgresErrors: 35,
  SessionValidatorHigh503Rate: 30,
  SessionValidatorCallerThrottled: 65,
  SessionValidatorCacheEpochChurn: 65
}

// The conditions, and the alerts each must raise. Any other alert firing for
// them fails the test, but those in MAY_ALSO, each a consequence the alert's
// own description names (another going pending and back is shown, not failed:
// the shortened windows hold a tenth of the real ones' samples, and a machine
// shared with other test runs makes a slow moment, or a query past its
// timeout, a large share of them): every validation sent to Postgres (Redis away, a cold
// cache, a flood of unknown tokens) may be slow; misses wait up to
// DATABASE_QUERY_TIMEOUT_MS for their 503 while Postgres is cut; a frozen
// Redis times out the calls that still reach it and opens the circuit; revokes
// with Redis away move the epoch, and each move voids the shared cache; a process
// just restarted answers its first validations cold (JIT, empty caches).
type Job = 'normal' | 'session-validator' | 'redis-killed' | 'redis-frozen' | 'postgres-cut' | 'slow-postgres' | 'cold-cache' | 'flooded'
const EXPECTED: Record<Job, string[]> = {
  normal: [],
  'session-validator': ['SessionValidatorTargetDown', 'SessionValidatorAllTargetsDown'],
  'redis-killed': ['SessionValidatorRedisNotAnswering', 'SessionValidatorRedisUnreachable', 'SessionValidatorCircuitOpen', 'SessionValidatorCacheEpochChurn'],
  'redis-frozen': ['SessionValidatorRedisNotAnswering'],
  'postgres-cut': ['SessionValidatorPostgresErrors', 'SessionValidatorHigh503Rate'],
  'slow-postgres': ['SessionValidatorValidationSlow'],
  'cold-cache': ['SessionValidatorCacheHitRatioLow'],
  flooded: ['SessionValidatorCallerThrottled']
}
const MAY_ALSO: Record<Job, string[]> = {
  normal: [],
  'session-validator': ['SessionValidatorValidationSlow'],
  'redis-killed': ['SessionValidatorValidationSlow', 'SessionValidatorCacheHitRatioLow'],
  'redis-frozen': ['SessionValidatorRedisUnreachable', 'SessionValidatorCircuitOpen'],
  'postgres-cut': ['SessionValidatorValidationSlow'],
  'slow-postgres': [],
  'cold-cache': ['SessionValidatorValidationSlow'],
  flooded: ['SessionValidatorValidationSlow', 'SessionValidatorCacheHitRatioLow']
}

t.test('every alert in alerts.yml has a condition and documented times here, and the shortened rules keep every expression but its windows', async t => {
  t.same([...new Set(Object.values(EXPECTED).flat())].sort(), [...alertNames].sort())
  t.same(Object.keys(FIRES_WITHIN).sort(), [...alertNames].sort())
  t.same(Object.keys(CLEARS_WITHIN).sort(), [...alertNames].sort())
  const before = rules.groups.flatMap(g => g.rules)
  const after = shortened.groups.flatMap(g => g.rules)
  after.forEach((r, i) => {
    t.equal(r.expr.replace(/\[\d+ms\]/g, '[w]'), before[i]!.expr.replace(/\[\w+\]/g, '[w]'), `${r.alert}: only the windows changed`)
  })
})

// ---- the instances --------------------------------------------------------

// Each instance is the built service in a process of its own (`npm test`
// builds first), as in production: its latency is its own event loop's, not
// this test's. The shared Redis for most; the normal instance gets a
// redis-server of its own, so that other tests' load on the shared one is not
// what it measures, and the Redis conditions theirs, to kill and to freeze.
const redisUrl = await sharedRedisUrl()
const killedCache = await ownRedis(t)
const frozenCache = await ownRedis(t)
const normalCache = await ownRedis(t)

interface Instance { name: Job, db: TestDatabase, base: string, target: string, server: ServerProcess, restart(): Promise<void> }

async function instance (name: Job, opts: { db: TestDatabase, databaseUrl?: string, redisUrl?: string, env?: Record<string, string> }): Promise<Instance> {
  const prefix = freshPrefix()
  const url = opts.redisUrl ?? redisUrl
  if (opts.redisUrl === undefined) inspector(t, url, prefix)
  const port = await freePort()
  const env = {
    DATABASE_URL: opts.databaseUrl ?? opts.db.url,
    DATABASE_POOL_MAX: '4',
    REDIS_URL: url,
    SESSION_CACHE_PREFIX: prefix,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    ...opts.env
  }
  const base = `http://127.0.0.1:${port}`
  // connected with the circuit closed (a loaded machine may make the ping
  // slower than /healthz/redis calls healthy)
  const up = async (server: ServerProcess) => await waitFor(`${name} to serve with its cache`, async () => {
    if (server.child.exitCode !== null) throw new Error(`${name} exited: ${server.stderr()}`)
    try {
      const health = await (await fetch(`${base}/healthz/redis`)).json() as { redis: { connected: boolean }, circuit: { state: string } }
      return health.redis.connected && health.circuit.state === 'closed'
    } catch {
      return false
    }
  }, 60_000, 100)
  const inst: Instance = {
    name,
    db: opts.db,
    base,
    target: `127.0.0.1:${port}`,
    server: startServer(t, env),
    async restart () {
      inst.server = startServer(t, env)
      await up(inst.server)
    }
  }
  await up(inst.server)
  return inst
}

const dbs = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(() => freshDatabase(t)))
const pgPort = Number(new URL(dbs[4]!.url).port || 5432)
const proxy = await faultProxy(t, pgPort)
const proxied = new URL(dbs[4]!.url)
proxied.hostname = '127.0.0.1'
proxied.port = String(proxy.port)

const instances = await Promise.all([
  instance('normal', { db: dbs[0]!, redisUrl: normalCache.url }),
  instance('session-validator', { db: dbs[1]! }),
  instance('redis-killed', { db: dbs[2]!, redisUrl: killedCache.url }),
  instance('redis-frozen', { db: dbs[3]!, redisUrl: frozenCache.url }),
  instance('postgres-cut', { db: dbs[4]!, databaseUrl: proxied.toString() }),
  instance('slow-postgres', { db: dbs[5]! }),
  instance('cold-cache', { db: dbs[6]! }),
  // a caller's failed-lookup budget of 20 a (shortened) minute
  instance('flooded', { db: dbs[7]!, env: { RATE_LIMIT_CALLER_FAILED_MAX: '20', RATE_LIMIT_WINDOW_MS: String(60_000 / FACTOR) } })
])
// the frozen Redis's instance serves nothing: it must be caught idle
const [normal, target, redisKilled, , postgresCut, slowPostgres, coldCache, flooded] =
  instances as [Instance, Instance, Instance, Instance, Instance, Instance, Instance, Instance]
// The control instance and its Redis get the CPU a production instance has:
// this machine's two cores are shared with other test runs, and a service
// waiting for a core is what ValidationSlow would rightly report.
let prioritised = true
for (const pid of [normal.server.child.pid!, normalCache.process.pid!]) {
  try {
    setPriority(pid, -10)
  } catch {
    prioritised = false
  }
}
t.comment(`normal instance and its redis-server at nice -10: ${prioritised ? 'yes' : 'no (not permitted here)'}`)

// ---- traffic ----------------------------------------------------------------

const statuses = new Map<Job, Map<number, number>>(instances.map(i => [i.name, new Map()]))
async function post (inst: Instance, path: string, body: unknown): Promise<number> {
  try {
    const res = await fetch(inst.base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    await res.arrayBuffer()
    const seen = statuses.get(inst.name)!
    seen.set(res.status, (seen.get(res.status) ?? 0) + 1)
    return res.status
  } catch {
    return 0 // the killed instance, until it is back
  }
}
const validate = (inst: Instance, token: string) => post(inst, '/sessions/validate', { token })
const unknownToken = () => `never-issued-${randomBytes(12).toString('hex')}`

const running = { all: true }
const loops: Array<Promise<void>> = []
function every (ms: number, fn: (tick: number) => Promise<unknown>, while_: () => boolean = () => running.all): void {
  loops.push((async () => {
    for (let tick = 0; running.all && while_(); tick++) {
      const start = performance.now()
      await fn(tick)
      await sleep(Math.max(0, ms - (performance.now() - start)))
    }
  })())
}

async function liveSessions (db: TestDatabase, n: number): Promise<TestSession[]> {
  const userId = await createUser(db.sql)
  return await Promise.all(Array.from({ length: n }, () => createSession(db.sql, userId)))
}

// Sessions each validated once: a cold cache.
async function coldSessions (db: TestDatabase, n: number): Promise<string[]> {
  const userId = await createUser(db.sql)
  const stem = `cold-${randomBytes(8).toString('hex')}-`
  await db.sql`INSERT INTO platform.user_sessions (id, user_id, token, expires_at)
               SELECT gen_random_uuid(), ${userId}, encode(sha256(convert_to(${stem} || i, 'UTF8')), 'hex'), now() + interval '1 hour'
                 FROM generate_series(1, ${n}) AS i`
  return Array.from({ length: n }, (_, i) => `${stem}${i + 1}`)
}

const live = new Map<Job, TestSession[]>(await Promise.all(instances.map(async i => [i.name, await liveSessions(i.db, 3)] as const)))
const cold = await coldSessions(coldCache.db, 1200)
// cached before anything starts, so that their hits need nothing else
async function cached (inst: Instance): Promise<void> {
  for (const s of live.get(inst.name)!) {
    await waitFor(`${inst.name} to cache a session`, async () => {
      const res = await fetch(`${inst.base}/sessions/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: s.token }) })
      await res.arrayBuffer()
      return res.headers.get('x-session-cache') === 'hit'
    }, 10_000, 50)
  }
}
await Promise.all(instances.map(cached))
const hot = (inst: Instance, tick: number) => validate(inst, live.get(inst.name)![tick % 3]!.token)

// normal: 40 validations a second, as a backend sends them: nearly all hits
// on a few sessions; once in 30 s each of a new session (a miss), an unknown
// token (401) and a revoke (its session replaced, another miss).
const normalLive = live.get('normal')!
every(25, async tick => {
  const slot = tick % 1200
  if (slot === 200) await validate(normal, (await createSession(normal.db.sql, normalLive[0]!.userId)).token)
  else if (slot === 600) await validate(normal, unknownToken())
  else if (slot === 1000) {
    const i = tick % normalLive.length
    await post(normal, '/sessions/revoke', { sessionId: normalLive[i]!.id })
    normalLive[i] = await createSession(normal.db.sql, normalLive[0]!.userId)
  } else await validate(normal, normalLive[tick % normalLive.length]!.token)
})

// The phases every condition shares: healthy, the fault, recovered.
const phase = { fault: false }
let coldNext = 0
every(100, tick => hot(target, tick))
every(100, tick => hot(redisKilled, tick))
every(100, tick => hot(postgresCut, tick))
every(50, tick => hot(slowPostgres, tick))
every(125, tick => phase.fault ? validate(coldCache, cold[coldNext++ % cold.length]!) : hot(coldCache, tick))
every(100, tick => hot(flooded, tick))
// what Railway and an operator poll; 503 there is by design and not alerted on
every(1000, () => Promise.all(instances.map(i => Promise.all(['/readyz', '/healthz', '/healthz/redis'].map(p => fetch(i.base + p).then(r => r.arrayBuffer(), () => {}))))))

// Then Prometheus, scraping the warmed-up instances.
const prometheus = await startPrometheus(t, {
  jobs: instances.map(i => ({ name: i.name, target: i.target })),
  rules: stringify(shortened),
  intervalSeconds: SCRAPE_SECONDS
})
t.comment(`set-up (8 databases, 8 instances, 3 redis-servers, prometheus): ${((performance.now() - started) / 1000).toFixed(1)} s`)
await waitFor('prometheus to scrape every instance', async () =>
  (await prometheus.query('up == 1')).length === instances.length, 20_000, 200)
// Before a target's first scrape there is no `up` at all, and the absent()
// rule may rightly fire (its `for:` is 3 s here) while eight targets come in
// on a loaded machine: history starts once the rules have seen every target.
await waitFor('the absent() rule to have seen every target', async () =>
  (await prometheus.alerts()).every(a => a.labels.alertname !== 'SessionValidatorAllTargetsDown'), 20_000, 200)

// Every poll of the alerts, from Prometheus' first scrape on.
const polls: Array<{ at: number, alerts: Array<{ job: string, alert: string, state: string }> }> = []
every(100, async () => {
  const at = performance.now()
  const alerts = await prometheus.alerts().catch(() => undefined)
  if (alerts !== undefined) polls.push({ at, alerts: alerts.map(a => ({ job: a.labels.job!, alert: a.labels.alertname!, state: a.state })) })
})

// Healthy history filling the longest window ([5m], 30 s here).
const HEALTHY_MS = 300_000 / FACTOR
await sleep(HEALTHY_MS)
const faultAt = performance.now()

// ---- the conditions, caused for real -----------------------------------------

phase.fault = true
target.server.child.kill('SIGKILL')
await killedCache.kill()
frozenCache.freeze()
proxy.cut()
const locking = { on: true }
loops.push((async () => {
  // ACCESS EXCLUSIVE for 150 ms at a time: every miss waits for it, hits do not
  while (locking.on && running.all) {
    await slowPostgres.db.sql.begin(async tx => {
      await tx`LOCK TABLE platform.user_sessions IN ACCESS EXCLUSIVE MODE`
      await sleep(150)
    })
    await sleep(5)
  }
})())
// revokes while Redis is away: each moves the cache epoch
const epochMoves: number[] = []
const redisKilledUser = live.get('redis-killed')![0]!.userId
every(1000, async () => {
  const s = await createSession(redisKilled.db.sql, redisKilledUser)
  if (await post(redisKilled, '/sessions/revoke', { sessionId: s.id }) === 200) epochMoves.push(performance.now())
}, () => phase.fault)
// Misses, sent without waiting for one another: while Postgres is cut each
// waits up to DATABASE_QUERY_TIMEOUT_MS for its 503, and while it is slow each
// waits for the lock. Enough of them that each shortened window holds many.
const inflight = new Set<Promise<unknown>>()
function misses (inst: Instance, ms: number): void {
  every(ms, async () => {
    const p = validate(inst, unknownToken()).finally(() => inflight.delete(p))
    inflight.add(p)
  }, () => phase.fault)
}
misses(postgresCut, 200)
misses(slowPostgres, 100)
// a flood of unknown tokens through one caller: 40 a second against 20 a window
const refusals: number[] = []
every(25, async () => {
  if (await validate(flooded, unknownToken()) === 429) refusals.push(performance.now())
}, () => phase.fault)

const key = (job: string, alert: string) => `${alert} on ${job}`
const wanted = Object.entries(EXPECTED).flatMap(([job, names]) => names.map(alert => key(job, alert)))
const firstSeen = (job: string, alert: string, state?: string) =>
  polls.find(p => p.alerts.some(a => a.job === job && a.alert === alert && (state === undefined || a.state === state)))?.at
const DEADLINE_MS = (Math.max(...Object.values(FIRES_WITHIN)) / FACTOR + 3 * SLACK_S) * 1000
while (performance.now() - faultAt < DEADLINE_MS && !wanted.every(w => {
  const [alert, job] = w.split(' on ') as [string, string]
  return firstSeen(job, alert, 'firing') !== undefined
})) await sleep(100)
const firedMs = performance.now() - faultAt
const frozenConnected = await prometheus.query('session_cache_redis_connected{job="redis-frozen"}')
const frozenResponding = await prometheus.query('session_cache_redis_responding{job="redis-frozen"}')

// ---- recovery ----------------------------------------------------------------

phase.fault = false
const recoveredAt = new Map<Job, number>()
const recover = async (job: Job, fn: () => Promise<void> | void) => {
  await fn()
  recoveredAt.set(job, performance.now())
}
await Promise.all([
  recover('session-validator', () => target.restart()),
  recover('redis-killed', () => killedCache.start()),
  recover('redis-frozen', () => frozenCache.thaw()),
  recover('postgres-cut', () => proxy.restore()),
  recover('slow-postgres', () => { locking.on = false }),
  recover('cold-cache', () => {}),
  recover('flooded', () => {})
])
const lastRecovery = Math.max(...recoveredAt.values())
const gone = (job: string, alert: string, after: number) =>
  polls.find(p => p.at > after && !p.alerts.some(a => a.job === job && a.alert === alert))?.at
while (performance.now() - lastRecovery < (Math.max(...Object.values(CLEARS_WITHIN)) / FACTOR + 2 * SLACK_S) * 1000 && !wanted.every(w => {
  const [alert, job] = w.split(' on ') as [string, string]
  return gone(job, alert, recoveredAt.get(job as Job) ?? lastRecovery) !== undefined
})) await sleep(100)

// Queried while the traffic still runs.
const loaded = await prometheus.rules()
const slowShare = await prometheus.query('1 - sum by (job) (session_validation_duration_seconds_bucket{le="0.05"}) / sum by (job) (session_validation_duration_seconds_count)')
const redisCalls = await prometheus.query('sum by (job, command) (redis_command_duration_seconds_count)')
const redisErrors = await prometheus.query('sum by (job) (session_cache_errors_total)')
const hitRatio = await prometheus.query('sum by (job) (increase(session_cache_hits_total[1m])) / (sum by (job) (increase(session_cache_hits_total[1m])) + sum by (job) (increase(session_cache_misses_total[1m])))')
const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/dashboard.json', import.meta.url), 'utf8')) as {
  panels: Array<{ title: string, targets?: Array<{ expr?: string }>, panels?: Array<{ title: string, targets?: Array<{ expr?: string }> }> }>
}
const panelQueries = dashboard.panels.flatMap(p => [p, ...(p.panels ?? [])])
  .flatMap(p => (p.targets ?? []).map(target => ({ title: p.title, expr: target.expr ?? '' })))
// As Grafana sends them for the healthy instance alone, where an absent series
// would show "No data" rather than 0; $__rate_interval is at least 4 scrapes.
const answers = await Promise.all(panelQueries.map(async q => ({
  ...q,
  result: await prometheus.query(q.expr.replaceAll('$job', 'normal').replaceAll('$__rate_interval', `${4 * SCRAPE_SECONDS * 1000}ms`))
})))
running.all = false
locking.on = false
await Promise.all(loops)
await Promise.all(inflight)

// ---- what was seen -------------------------------------------------------------

// Seconds, here and as the real (10 times slower) equivalent.
const fmt = (ms: number | undefined) => ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s (${(ms * FACTOR / 1000).toFixed(0)} s real)`
// From when each alert's condition started: the fault, or for the two that
// count events, the first refusal and the first epoch move.
const startOf = (alert: string) => alert === 'SessionValidatorCallerThrottled'
  ? refusals[0]
  : alert === 'SessionValidatorCacheEpochChurn' ? epochMoves[0] : faultAt
const endOf = (job: Job, alert: string) => alert === 'SessionValidatorCallerThrottled'
  ? refusals.at(-1)
  : alert === 'SessionValidatorCacheEpochChurn' ? Math.max(epochMoves.at(-1) ?? 0, recoveredAt.get(job)!) : recoveredAt.get(job)
const timing = wanted.map(w => {
  const [alert, job] = w.split(' on ') as [string, Job]
  const start = startOf(alert)
  const fired = firstSeen(job, alert, 'firing')
  const end = endOf(job, alert)
  const cleared = end === undefined ? undefined : gone(job, alert, end)
  return {
    job,
    alert,
    fired: fired === undefined || start === undefined ? undefined : fired - start,
    cleared: cleared === undefined || end === undefined ? undefined : cleared - end
  }
})
t.comment(`until every expected alert fired: ${fmt(firedMs)}; whole file so far: ${((performance.now() - started) / 1000).toFixed(1)} s`)
for (const x of timing) t.comment(`${x.alert} on ${x.job}: fired ${fmt(x.fired)} after its condition began, cleared ${fmt(x.cleared)} after it ended`)
// For one that took long: when it went pending and back, seconds from the fault.
const transitions = (job: string, alert: string) => {
  const out: string[] = []
  let last = 'inactive'
  for (const p of polls) {
    const state = p.alerts.find(a => a.job === job && a.alert === alert)?.state ?? 'inactive'
    if (state !== last) out.push(`${((p.at - faultAt) / 1000).toFixed(1)} ${state}`)
    last = state
  }
  return out.join(', ')
}
for (const x of timing.filter(x => x.fired === undefined || x.fired / 1000 > FIRES_WITHIN[x.alert]! / FACTOR + SLACK_S)) {
  t.comment(`${x.alert} on ${x.job}, from the fault on: ${transitions(x.job, x.alert)}`)
}
t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].map(([job, m]) => [job, Object.fromEntries(m)])))}`)
t.comment(`429s: ${refusals.length}; revokes that moved the epoch: ${epochMoves.length}`)
t.comment(`the cache's Redis calls by job and command: ${JSON.stringify(redisCalls.map(s => `${s.metric.job} ${s.metric.command} ${s.value[1]}`))}; failed: ${JSON.stringify(redisErrors.map(s => `${s.metric.job} ${s.value[1]}`))}`)

// ---- what must hold ---------------------------------------------------------

t.test('Prometheus loaded every rule and evaluates it without error', async t => {
  t.same([...loaded.keys()].sort(), [...alertNames].sort())
  for (const [name, rule] of loaded) t.equal(rule.health, 'ok', `${name} evaluates`)
})

t.test('nothing fired on healthy history: every instance served normally for the longest window first', async t => {
  const healthy = polls.filter(p => p.at < faultAt).flatMap(p => p.alerts.filter(a => a.state === 'firing').map(a => key(a.job, a.alert)))
  t.same([...new Set(healthy)], [], `none firing in the ${HEALTHY_MS / 1000} s before the conditions`)
})

for (const [job, names] of Object.entries(EXPECTED) as Array<[Job, string[]]>) {
  if (names.length === 0) continue
  t.test(`${job}: ${names.join(', ')} fire in time, then clear in time`, async t => {
    for (const x of timing.filter(x => x.job === job)) {
      t.ok(firstSeen(job, x.alert) !== undefined, `${x.alert} went pending`)
      const fireBound = FIRES_WITHIN[x.alert]! / FACTOR + SLACK_S
      t.ok(x.fired !== undefined && x.fired / 1000 <= fireBound, `${x.alert} fired after ${fmt(x.fired)} (documented: within ${FIRES_WITHIN[x.alert]} s real; allowed here ${fireBound} s)`)
      const clearBound = CLEARS_WITHIN[x.alert]! / FACTOR + SLACK_S
      t.ok(x.cleared !== undefined && x.cleared / 1000 <= clearBound, `${x.alert} cleared ${fmt(x.cleared)} after its condition ended (documented: within ${CLEARS_WITHIN[x.alert]} s real; allowed here ${clearBound} s)`)
    }
    const others = polls.flatMap(p => p.alerts).filter(a => a.job === job && ![...names, ...MAY_ALSO[job]].includes(a.alert))
    t.same([...new Set(others.filter(a => a.state === 'firing').map(a => a.alert))], [], `and no other alert fired for this condition${MAY_ALSO[job].length > 0 ? ` (but ${MAY_ALSO[job].join(', ')})` : ''}`)
    const pending = [...new Set(others.map(a => a.alert))]
    if (pending.length > 0) t.comment(`went pending, and back, for this condition too: ${pending.map(alert => `${alert} (${transitions(job, alert)})`).join('; ')}`)
  })
}

t.test('a frozen Redis is caught while the connection is still up', async t => {
  t.same(frozenConnected.map(s => s.value[1]), ['1'], 'session_cache_redis_connected stayed 1 while frozen')
  t.same(frozenResponding.map(s => s.value[1]), ['0'], 'session_cache_redis_responding said 0')
})

t.test('the conditions were real: 429s for the flood, epoch moves for the revokes, the target instance back', async t => {
  t.ok(refusals.length > 10, `${refusals.length} requests refused with 429`)
  t.ok(epochMoves.length >= 5, `${epochMoves.length} revokes with Redis away`)
  t.equal(target.server.child.exitCode, null, 'the restarted instance serves')
})

// ValidationSlow may go pending here, never fire: its shortened 3 s window
// holds ~120 of this instance's validations, so two answers delayed past 50 ms
// by one scheduling stall of this shared two-core machine are its p99 (the
// real window holds 10 times as many).
t.test('normal mixed traffic raises no alert: none pending once its windows are full (but ValidationSlow), none ever firing', async t => {
  const ofNormal = polls.flatMap(p => p.alerts.filter(a => a.job === 'normal').map(a => ({ ...a, at: p.at })))
  const pending = ofNormal.filter(o => o.at >= faultAt - HEALTHY_MS / 2 && !(o.alert === 'SessionValidatorValidationSlow' && o.state === 'pending'))
  t.same([...new Set(pending.map(o => `${o.alert} ${o.state}`))], [], 'none from halfway through the healthy history on, through the conditions and the recovery')
  t.comment(`ValidationSlow pending on it: ${transitions('normal', 'SessionValidatorValidationSlow') || 'never'}; share of its validations over 50 ms: ${Number(slowShare.find(s => s.metric.job === 'normal')?.value[1]).toFixed(4)}`)
  t.same([...new Set(ofNormal.filter(o => o.state === 'firing').map(o => o.alert))], [], 'none firing from the first scrape on')
  const statusesOfNormal = statuses.get('normal')!
  t.ok((statusesOfNormal.get(200) ?? 0) > 500 && (statusesOfNormal.get(401) ?? 0) > 0, `it was traffic: ${statusesOfNormal.get(200)} answered 200, ${statusesOfNormal.get(401)} 401`)
  t.same([...statusesOfNormal.keys()].filter(s => s !== 200 && s !== 401), [], 'answered only 200 and 401')
  const ratio = Number(hitRatio.find(s => s.metric.job === 'normal')?.value[1])
  t.ok(ratio >= 0.5 && ratio < 1, `with misses, and enough lookups to be judged by the hit-ratio alert (hit ratio ${ratio.toFixed(3)})`)
})

t.test('every dashboard query returns data for the normal instance from that Prometheus, after the traffic', async t => {
  for (const { title, expr, result } of answers) {
    t.ok(result.some(s => Number.isFinite(Number(s.value[1]))), `"${title}": ${expr}`)
  }
})

t.test(`the whole file stays bounded (${((performance.now() - started) / 1000).toFixed(1)} s)`, async t => {
  t.ok(performance.now() - started < 330_000)
})
