// The validate and revoke paths: memory (L1), then Redis (L2), then Postgres.
// What keeps the caches true is coherence/ (read its index.ts first).
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { DependencyUnavailableError, failureLog } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { ActivityWriter } from './activity-writer.js'
import { sessionIdOf, type RenderAnswer } from './answer.js'
import type { Coherence, ReadTicket } from './coherence/index.js'
import { digestHex, type LocalCache, type LocalEntry, type MemoryKey } from './local-cache.js'
import type { ReplicaReader } from './replica-reader.js'
import type { SessionCache } from './session-cache.js'
import type { SessionRecord } from './session-record.js'
import type { ListedSession, ListPosition, RevokeTarget, SessionStore } from './session-store.js'

export type CacheStatus = 'hit' | 'miss' | 'bypass'
export type CacheTier = 'local' | 'redis'

export type Invalid = 'not_found' | 'expired' | 'idle'

/**
 * A valid answer is its JSON text (answer.ts), ready to send. 'failed': no
 * answer (Postgres unreachable: a 503; the failed-lookup budget: a 429), its
 * error to throw once the cache status is on the reply.
 */
export type Validation =
  | { status: 'valid', answer: string, cache: CacheStatus, tier?: CacheTier | undefined }
  | { status: Invalid, answer?: undefined, cache: CacheStatus, tier?: undefined }
  | { status: 'failed', error: unknown, cache: CacheStatus, tier?: undefined }

export type { RevokeTarget } from './session-store.js'

/**
 * The idle timeout, judged on last_activity_at as Postgres has it. That value
 * lags a use anywhere by up to two activity resolutions (the write-behind holds
 * a session back for one to two) plus a flush: only past the timeout *and*
 * that lag is a session idle, so no instance calls idle a session another one
 * saw in use. Undefined: no idle timeout.
 */
export interface IdleRule { afterMs: number }

export function idleRule (config: Pick<Config, 'sessionIdleTimeoutSeconds' | 'activityResolutionSeconds'>): IdleRule | undefined {
  if (config.sessionIdleTimeoutSeconds === 0) return undefined
  return { afterMs: (config.sessionIdleTimeoutSeconds + 2 * config.activityResolutionSeconds + 1) * 1000 }
}

/** Asked before a lookup reaches Postgres (may refuse it: a 429), told after one found nothing. */
export interface MissGate<C> {
  admit(context: C): unknown
  failed(charge: unknown): void
}

export interface SessionService {
  /**
   * Hot path, synchronous: the answer from this instance's memory, counted as
   * a hit of tier local; undefined when memory cannot answer (validate() then
   * goes on from there). Nothing is allocated on the way.
   */
  fromMemory(key: MemoryKey): string | undefined
  validate<C>(key: MemoryKey, gate?: MissGate<C>, context?: C): Promise<Validation>
  /** Keeps a session read from Postgres in memory (the warm-up's pages), if the ticket still allows. */
  remember(ticket: Readonly<ReadTicket>, key: MemoryKey, record: SessionRecord): void
  revoke(target: RevokeTarget): Promise<number>
  /** The user's live sessions (not expired, not idle), newest activity first, from Postgres. */
  listSessions(userId: string, limit: number, after: ListPosition | undefined): Promise<ListedSession[]>
  readonly epoch: string | undefined
  readonly cacheEnabled: boolean
}

export interface SessionServiceDeps {
  store: SessionStore
  cache: SessionCache | undefined
  local: LocalCache | undefined
  coherence: Coherence
  activity: ActivityWriter
  render: RenderAnswer
  metrics: Metrics
  log: FastifyBaseLogger
  beforeFill?: ((digest: string) => Promise<void>) | undefined
  replica?: ReplicaReader | undefined
  idle?: IdleRule | undefined
}

type Lookup = { status: 'valid', record: SessionRecord, answer: string } | { status: Invalid }

export function createSessionService ({ store, cache, local, coherence, activity, render, metrics, log, beforeFill, replica, idle }: SessionServiceDeps): SessionService {
  const inflight = new Map<string, Promise<Lookup>>()
  const localHits = metrics.cacheHits.labels('local')
  const redisHits = metrics.cacheHits.labels('redis')
  const localMisses = metrics.localCacheMisses
  const misses = metrics.cacheMisses
  const byEpoch = metrics.cacheInvalidations.labels('epoch')
  const fillsRefused = metrics.cacheFillsRejected
  const staleAnswers = metrics.cacheStaleAnswers

  const idleAfter = idle?.afterMs ?? Infinity
  // the last millisecond a copy of this record may be answered without asking Postgres
  const servedUntil = (record: SessionRecord) => Math.min(record.expiresAt, (record.lastActivityAt ?? record.createdAt) + idleAfter + 1)

  // A cached copy is answered only while it is live by its own fields; one
  // that looks expired or idle is judged by Postgres, whose row may say
  // otherwise (a sliding expiry moved, another instance saw it in use).
  const live = (record: SessionRecord) => Date.now() < servedUntil(record)

  function judge (record: SessionRecord | undefined): Lookup {
    if (record === undefined) return { status: 'not_found' }
    const now = Date.now()
    if (record.expiresAt <= now) return { status: 'expired' }
    if (now - (record.lastActivityAt ?? record.createdAt) > idleAfter) return { status: 'idle' }
    return { status: 'valid', record, answer: render(record) }
  }

  // `stamp`: the activity generation the session was last queued in (0: never)
  function entryOf (record: SessionRecord, answer: string, stamp: number): LocalEntry {
    return { answer, userId: record.userId, until: servedUntil(record), stamp }
  }

  // Memory's answer for a slot: counted, and its activity queued when due.
  function hit (key: MemoryKey): string | undefined {
    const slot = local!.find(key, Date.now())
    if (slot < 0) return undefined
    localHits.inc()
    const answer = local!.answer(slot)
    if (local!.due(slot, activity.generation)) activity.queue(sessionIdOf(answer))
    return answer
  }

  // once per outage (per change of its code), not once per request
  const postgres = failureLog(code => log.warn({ code }, 'postgres calls failing; misses, revokes and listings are answered 503 until it answers'), () => log.info('postgres answers again'))
  async function read (from: Pick<SessionStore, 'findByDigest'>, digest: string): Promise<SessionRecord | undefined> {
    try {
      const record = await from.findByDigest(digest)
      postgres.ok()
      return record
    } catch (err) {
      postgres.failed(err)
      throw new DependencyUnavailableError()
    }
  }

  // Writes the entry; 'written' only when Redis took it.
  async function tryFill (digest: string, record: SessionRecord, epoch: string, readStartedAt: number, lease: string): Promise<'written' | 'refused' | 'failed'> {
    try {
      if (beforeFill !== undefined) await beforeFill(digest)
      const result = await cache!.fill(digest, record, epoch, readStartedAt, lease)
      if (result === 'refused') fillsRefused.inc()
      return result
    } catch {
      return 'failed'
    }
  }

  // Postgres, and the fill of Redis when the read may: it holds the fill
  // lease, taken before this read, and the epoch it began under is still
  // current when it lands (a move during the read may stand for a change this
  // read did not see).
  async function lookup (digest: string, ticket: ReadTicket, lease: string | undefined): Promise<Lookup> {
    const readStartedAt = Date.now()
    const mayFill = lease !== undefined && ticket.shared
    if (mayFill && replica?.usable() === true) {
      // A replica may lag behind a revoke made before the lease was taken:
      // only a positive answer that Redis accepts (lease held, no tombstone,
      // so not revoked meanwhile) stands. Anything else is
      // confirmed on the primary, so a session created a moment ago is valid
      // and a revoked one is never resurrected from a stale replica.
      let record: SessionRecord | undefined
      try {
        record = await replica.find(digest)
      } catch {
        record = undefined
      }
      if (record !== undefined && record.expiresAt > Date.now() && coherence.current(ticket) &&
          await tryFill(digest, record, ticket.epoch!, readStartedAt, lease) === 'written') {
        return { status: 'valid', record, answer: render(record) }
      }
      replica.confirmed()
      return judge(await read(store, digest))
    }
    const result = judge(await read(store, digest))
    if (result.status === 'valid' && mayFill && coherence.current(ticket)) await tryFill(digest, result.record, ticket.epoch!, readStartedAt, lease)
    else if (result.status !== 'valid' && lease !== undefined) await cache!.release(digest, lease).catch(() => {})
    return result
  }

  // Concurrent misses for one digest share one Postgres query and one fill.
  function singleFlight (digest: string, ticket: ReadTicket, lease: string | undefined): Promise<Lookup> {
    let pending = inflight.get(digest)
    if (pending === undefined) {
      pending = lookup(digest, ticket, lease).finally(() => inflight.delete(digest))
      inflight.set(digest, pending)
    }
    return pending
  }

  return {
    get epoch () { return coherence.epoch },
    get cacheEnabled () { return cache !== undefined || local !== undefined },

    // The lease is checked here, when answering: after a freeze, a request
    // may run before the invalidations already waiting in the socket.
    fromMemory: key => local !== undefined && coherence.servable() ? hit(key) : undefined,

    async validate (key, gate, context) {
      // 1. Memory. The ticket is taken before any await.
      const ticket = coherence.ticket()
      let status: CacheStatus = 'bypass'
      if (ticket.memory) {
        const answer = hit(key)
        if (answer !== undefined) return { status: 'valid', answer, cache: 'hit', tier: 'local' }
        localMisses.inc()
        status = 'miss'
      }

      // 2. Redis, whose entry counts only under the current epoch.
      const digest = digestHex(key)
      // the fill lease, taken before Postgres is read: a fill must hold it
      let lease: string | undefined
      // past its cache TTL: answered only if Postgres cannot be reached
      let stale: SessionRecord | undefined
      if (ticket.shared) {
        try {
          const read = await cache!.get(digest, ticket.epoch!)
          const entry = read.entry
          lease = read.lease
          status = 'miss'
          if (entry !== undefined) {
            if (entry.epoch === coherence.epoch && live(entry.record) && Date.now() >= entry.freshUntil) {
              stale = entry.record
            } else if (entry.epoch === coherence.epoch && live(entry.record)) {
              redisHits.inc()
              const stamp = activity.touch(entry.record.id)
              const answer = render(entry.record)
              coherence.keep(ticket, key, entryOf(entry.record, answer, stamp), true)
              return { status: 'valid', answer, cache: 'hit', tier: 'redis' }
            }
            if (entry.epoch !== coherence.epoch) byEpoch.inc()
          }
          // read as of this epoch, yet to be refilled (stale, or past its own expiry)
          lease ??= await cache!.lease(digest)
        } catch {
          // counted in session_cache_errors_total; Postgres answers instead
        }
      }

      // 3. Postgres: this lookup costs a query.
      if (status === 'miss') misses.inc()
      let charge, result
      try {
        charge = gate?.admit(context!)
      } catch (error) {
        // refused by the caller's budget: no lookup, so no fill; the lease is
        // handed back rather than left to expire (a flood would leave one per guess)
        if (lease !== undefined) await cache!.release(digest, lease).catch(() => {})
        return { status: 'failed', error, cache: status }
      }
      try {
        result = await singleFlight(digest, ticket, lease)
      } catch (error) {
        // Postgres unreachable: a stale entry stands, unless anything was
        // invalidated meanwhile (it may be this session) or the epoch moved
        if (stale !== undefined && error instanceof DependencyUnavailableError && coherence.unchanged(ticket) && live(stale)) {
          staleAnswers.inc()
          activity.touch(stale.id)
          return { status: 'valid', answer: render(stale), cache: 'hit', tier: 'redis' }
        }
        return { status: 'failed', error, cache: status }
      }
      if (result.status !== 'valid') {
        gate?.failed(charge)
        return { status: result.status, cache: status }
      }
      const stamp = activity.touch(result.record.id)
      coherence.keep(ticket, key, entryOf(result.record, result.answer, stamp), false)
      return { status: 'valid', answer: result.answer, cache: status }
    },

    remember (ticket, key, record) {
      coherence.keep(ticket, key, entryOf(record, render(record), 0), false)
    },

    async listSessions (userId, limit, after) {
      try {
        return await store.listSessions(userId, limit, after, idle === undefined ? undefined : Date.now() - idle.afterMs)
      } catch (err) {
        postgres.failed(err)
        throw new DependencyUnavailableError()
      }
    },

    async revoke (target) {
      try {
        return await coherence.revoke(target)
      } catch (err) {
        postgres.failed(err)
        throw new DependencyUnavailableError()
      }
    }
  }
}
