// The traffic: validations at a fixed rate spread over the instances a load
// balancer would send to (valid sessions, tokens never issued, sessions just
// revoked), and beside them what Studio does: sessions created in Postgres,
// revoked one by one and all of a user's at once through the API. Every
// answer is judged as it comes (judge.ts).
import { randomBytes } from 'node:crypto'
import type { Answer } from './http.ts'
import type { Failures } from './failures.ts'
import type { Instance } from './instance.ts'
import { judge, type Expectation } from './judge.ts'
import type { Population, Session } from './sessions.ts'
import type { Tally } from './tally.ts'
import type { Timeline } from './timeline.ts'
import type { Redis } from 'ioredis'
import type postgres from 'postgres'

// shares of the validations
const UNKNOWN_SHARE = 0.08
const REVOKED_SHARE = 0.1
// Studio's side, per second: a session created and one revoked; every tenth
// second all of one user's sessions revoked, and a new user signs in
const REVOKE_ALL_EVERY = 10
const NEW_USER_SESSIONS = 4
/** validations in flight beyond which the ticker waits (an instance hanging must not pile up requests) */
const MAX_IN_FLIGHT = 400
/** a revoke answered 503 is tried again, for this long, at most this far apart */
const REVOKE_RETRY_MS = 120_000
const RETRY_MAX_MS = 8000
// the default SESSION_CACHE_TTL_SECONDS: an entry filled longer ago than this may have expired
const CACHE_TTL_MS = 300_000
const TTL_MARGIN_MS = 30_000
const PREFIX = 'session:'
export const FLOOD_ADDRESS = '203.0.113.66'

export interface Traffic {
  start(): void
  /** Stops every loop and waits for what is in flight. */
  stop(): Promise<void>
  /** Unknown tokens from one end-user address, at `rate` a second for `ms`. */
  flood(rate: number, ms: number): Promise<void>
  readonly validations: number
}

export interface TrafficOptions {
  rate: number
  instances: Instance[]
  population: Population
  timeline: Timeline
  tally: Tally
  failures: Failures
  redisClient: Redis
  /** the soak's own connection to Postgres, the truth to check a surprise against */
  sql: postgres.Sql
  /** live sessions the soak keeps */
  sessions: number
  now: () => number
  log: (line: string) => void
}

const unknownToken = () => `never-issued-${randomBytes(18).toString('base64url')}`
const randomAddress = () => `10.200.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 250)}`
const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(Math.random() * list.length)]
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export function createTraffic (o: TrafficOptions): Traffic {
  const { instances, population: people, timeline, tally, failures, now } = o
  const state = { running: false }
  let inFlight = 0
  let validations = 0
  let next = 0
  const pending = new Set<Promise<unknown>>()
  const loops: Array<Promise<void>> = []

  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p)
    p.finally(() => pending.delete(p)).catch(() => {})
    return p
  }

  function routable (): Instance | undefined {
    for (let i = 0; i < instances.length; i++) {
      const inst = instances[next++ % instances.length]!
      if (inst.routable) return inst
    }
    return undefined
  }

  /** The soak took this process out of the load balancer (to stop or kill it) since the request left. */
  const stopping = (inst: Instance, generation: number) => !inst.routable || inst.generation !== generation

  function expectation (s: Session | undefined, sentAt: number, answeredAt: number): Expectation {
    if (s === undefined) return 'invalid'
    if (s.revokedAt !== undefined && s.revokedAt <= sentAt) return 'invalid'
    if (s.revokeSentAt !== undefined && s.revokeSentAt <= answeredAt) return 'either'
    return 'valid'
  }

  // Whether Redis held the session's entry in the current epoch when the
  // request was sent, as far as can be seen from outside: it was served from
  // Redis before the request and after the last void, that entry was filled
  // (a 200 miss) recently enough not to have expired by the request, and its
  // key (either of the SPEC's two forms) is there still.
  async function cachedInRedis (s: Session, sentAt: number, seen: number | undefined, filled: number | undefined): Promise<boolean> {
    if (seen === undefined || seen <= timeline.voidedAt) return false
    if (filled === undefined || filled > seen || sentAt - filled > CACHE_TTL_MS - TTL_MARGIN_MS) return false
    try {
      return await o.redisClient.exists(`${PREFIX}${s.digest}`, `${PREFIX}{${s.digest}}`) > 0
    } catch {
      return false
    }
  }

  async function rowExists (s: Session): Promise<boolean> {
    try {
      return (await o.sql`SELECT 1 FROM platform.user_sessions WHERE id = ${s.id}`).length > 0
    } catch {
      return true
    }
  }

  async function validate (inst: Instance, s: Session | undefined, flood: boolean): Promise<void> {
    const index = instances.indexOf(inst)
    const sentAt = now()
    const generation = inst.generation
    // what was known of its Redis entry when the request left
    const seenInRedis = s?.seenInRedisAt
    const filled = s?.filledAt
    let answer: Answer
    inFlight++
    try {
      answer = await inst.http.post('/sessions/validate', { token: s?.token ?? unknownToken() }, { 'x-real-ip': flood ? FLOOD_ADDRESS : s?.address ?? randomAddress() })
    } catch (err) {
      if (stopping(inst, generation)) tally.at(sentAt).cut++
      else failures.add({ at: sentAt, what: 'no answer', instance: inst.name, detail: (err as NodeJS.ErrnoException).code ?? (err as Error).message })
      return
    } finally {
      inFlight--
    }
    const answeredAt = now()
    const counts = tally.at(sentAt)
    // an instance being stopped answers 503 to what reaches it while it closes
    if (answer.status === 503 && stopping(inst, generation)) { counts.cut++; return }
    const expect = expectation(s, sentAt, answeredAt)
    counts.statuses.set(answer.status, (counts.statuses.get(answer.status) ?? 0) + 1)
    const cache = answer.headers['x-session-cache']
    if (cache === undefined) counts.noCacheHeader++
    const body = answer.body as { valid?: boolean, session?: { id?: string }, user?: { id?: string } } | undefined
    if (s !== undefined && expect === 'valid') {
      // already cached: answered 200 before, its entry filled recently enough
      // not to have expired, and either filled or seen in Redis since Redis
      // last evicted (an entry that survived the eviction counts, or the few
      // refilled in a short window would be too few to judge). A Redis
      // restart or an epoch move voids entries too, and is not excused: the
      // warm-up refills the shared cache after either, and memory keeps what
      // Postgres answered.
      const sinceEviction = (filled !== undefined && filled > timeline.evictedAt) || (seenInRedis !== undefined && seenInRedis > timeline.evictedAt)
      if (filled !== undefined && sinceEviction && sentAt - filled < CACHE_TTL_MS - TTL_MARGIN_MS) {
        counts.counted++
        if (cache === 'hit') counts.hits++
      }
      if (answer.status === 200) {
        if (cache === 'miss') s.filledAt = answeredAt
        if (answer.headers['x-session-cache-tier'] === 'redis') s.seenInRedisAt = answeredAt
      }
    }
    const faulted = timeline.postgresFaulted(index, sentAt, answeredAt)
    // a stalled machine times out Redis as well: its 503s are excused, cached or not
    const stalled = !faulted && timeline.stalled(sentAt, answeredAt)
    if (stalled && answer.status === 503) counts.stalled503++
    const verdict = judge(
      { expect, postgresFaulted: faulted || stalled, flood },
      { status: answer.status, valid: body?.valid, sessionId: body?.session?.id, userId: body?.user?.id },
      s === undefined ? undefined : { sessionId: s.id, userId: s.userId })
    const kind = s === undefined ? 'unknown token' : expect === 'invalid' ? 'revoked session' : 'valid session'
    if (verdict.ok === false) {
      const reason = (body as { reason?: string } | undefined)?.reason
      const detail = `${kind}${s === undefined ? '' : ` ${s.id} of user ${s.userId}`}, answer ${answer.status}${reason === undefined ? '' : ` ${reason}`} ${cache ?? 'no x-session-cache'}`
      // Postgres is the truth: a live session's row gone is no wrong 401 but a delete the soak did not make
      const what = answer.status === 401 && s !== undefined && !await rowExists(s) && s.revokeSentAt === undefined ? 'a live session\'s row deleted by no revoke of the soak\'s (one that ran late?)' : verdict.why
      failures.add({ at: sentAt, what, instance: inst.name, detail })
    } else if (verdict.ok === 'if-uncached' && !stalled && s !== undefined && await cachedInRedis(s, sentAt, seenInRedis, filled)) {
      failures.add({ at: sentAt, what: '503 for a session cached in Redis while Postgres was unreachable', instance: inst.name, detail: `filled at ${(filled! / 1000).toFixed(1)} s, served from Redis at ${(seenInRedis! / 1000).toFixed(1)} s` })
    }
  }

  function sendOne (): void {
    const inst = routable()
    if (inst === undefined || inFlight >= MAX_IN_FLIGHT) return
    validations++
    const r = Math.random()
    let s: Session | undefined
    if (r >= UNKNOWN_SHARE) {
      // the newest revoked, as a client holding a just-revoked token would send it
      s = r < UNKNOWN_SHARE + REVOKED_SHARE ? pick(people.revoked.slice(-50)) : pick(people.live)
    }
    track(validate(inst, s, false))
  }

  async function ticker (rate: number, until: () => boolean, send: () => void): Promise<void> {
    const started = performance.now()
    let sent = 0
    while (until()) {
      const due = Math.floor((performance.now() - started) * rate / 1000)
      for (; sent < due; sent++) send()
      await sleep(20)
    }
  }

  // A revoke goes to any instance serving; a 503 (Postgres unreachable) is
  // tried again until it is answered, as a client would: backing off.
  async function revoke (sessions: Session[], path: string, body: unknown): Promise<void> {
    const sentAt = now()
    people.revoking(sessions, sentAt)
    for (let attempt = 0; now() - sentAt < REVOKE_RETRY_MS; attempt++) {
      const backOff = () => sleep(Math.min(RETRY_MAX_MS, 500 * 2 ** attempt))
      const inst = routable()
      if (inst === undefined) { await sleep(200); continue }
      const at = now()
      const generation = inst.generation
      let answer: Answer
      try {
        answer = await inst.http.post(path, body)
      } catch (err) {
        if (!stopping(inst, generation)) failures.add({ at, what: 'no answer to a revoke', instance: inst.name, detail: (err as NodeJS.ErrnoException).code ?? (err as Error).message })
        await backOff()
        continue
      }
      if (answer.status === 200) {
        people.revokeDone(sessions, now())
        return
      }
      const excused = stopping(inst, generation) || timeline.postgresFaulted(instances.indexOf(inst), at, now()) || timeline.stalled(at, now())
      if (answer.status !== 503 || !excused) {
        failures.add({ at, what: `revoke answered ${answer.status}${answer.status === 503 ? ' while Postgres was reachable' : ''}`, instance: inst.name })
        if (answer.status !== 503) return
      }
      await backOff()
    }
    failures.add({ at: sentAt, what: 'revoke not answered 200 within 2 minutes' })
  }

  // A user gets no new session while all of theirs are being revoked, and
  // is not revoked while one is being added: what Postgres deletes is then
  // exactly what the soak believes revoked.
  const busy = new Set<string>()
  async function whileBusy<T> (user: string, work: Promise<T>): Promise<T> {
    busy.add(user)
    try {
      return await work
    } finally {
      busy.delete(user)
    }
  }

  async function studio (): Promise<void> {
    for (let tick = 1; state.running; tick++) {
      await sleep(1000)
      if (!state.running) break
      // Postgres may be down or restarting: Studio's own writes fail then too
      if (people.live.length < o.sessions) {
        const user = pick(people.usersWithSessions().filter(u => !busy.has(u)))
        if (user === undefined) track(people.addUser(NEW_USER_SESSIONS).catch(() => {}))
        else track(whileBusy(user, people.addSession(user)).catch(() => {}))
      }
      const one = pick(people.live)
      if (one !== undefined) track(revoke([one], '/sessions/revoke', { token: one.token }))
      if (tick % REVOKE_ALL_EVERY === 0) {
        const user = pick(people.usersWithSessions().filter(u => !busy.has(u) && people.sessionsOf(u).length > 1))
        if (user !== undefined) {
          track(whileBusy(user, revoke([...people.sessionsOf(user)], `/users/${user}/sessions/revoke`, {})))
          track(people.addUser(NEW_USER_SESSIONS).catch(() => {}))
        }
      }
    }
  }

  return {
    start () {
      state.running = true
      loops.push(ticker(o.rate, () => state.running, sendOne), studio())
    },
    async stop () {
      state.running = false
      await Promise.all(loops)
      while (pending.size > 0) await Promise.allSettled([...pending])
    },
    async flood (rate, ms) {
      const until = performance.now() + ms
      await ticker(rate, () => state.running && performance.now() < until, () => {
        const inst = routable()
        if (inst === undefined || inFlight >= MAX_IN_FLIGHT) return
        track(validate(inst, undefined, true))
      })
    },
    get validations () { return validations }
  }
}
