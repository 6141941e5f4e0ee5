// The validate and revoke paths: memory (L1), then Redis (L2), then Postgres.
// What keeps the caches true is coherence/ (read its index.ts first).
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { DependencyUnavailableError, errorCode } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { ActivityWriter } from './activity-writer.js'
import type { Coherence } from './coherence/index.js'
import type { LocalCache } from './local-cache.js'
import type { ReplicaReader } from './replica-reader.js'
import type { SessionCache } from './session-cache.js'
import type { SessionRecord } from './session-record.js'
import type { ListedSession, ListPosition, RevokeTarget, SessionStore } from './session-store.js'

export type CacheStatus = 'hit' | 'miss' | 'bypass'
export type CacheTier = 'local' | 'redis'

export type Invalid = 'not_found' | 'expired' | 'idle'

export type Validation =
  | { status: 'valid', record: SessionRecord, cache: CacheStatus, tier?: CacheTier | undefined }
  | { status: Invalid, record?: undefined, cache: CacheStatus, tier?: undefined }

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
  validate<C>(digest: string, gate?: MissGate<C>, context?: C): Promise<Validation>
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
  metrics: Metrics
  log: FastifyBaseLogger
  beforeFill?: ((digest: string) => Promise<void>) | undefined
  replica?: ReplicaReader | undefined
  idle?: IdleRule | undefined
}

type Lookup = { status: 'valid', record: SessionRecord } | { status: Invalid }

export function createSessionService ({ store, cache, local, coherence, activity, metrics, log, beforeFill, replica, idle }: SessionServiceDeps): SessionService {
  const inflight = new Map<string, Promise<Lookup>>()
  const localHits = metrics.cacheHits.labels('local')
  const redisHits = metrics.cacheHits.labels('redis')
  const localMisses = metrics.localCacheMisses
  const misses = metrics.cacheMisses
  const byEpoch = metrics.cacheInvalidations.labels('epoch')
  const fillsRefused = metrics.cacheFillsRejected

  async function read (from: Pick<SessionStore, 'findByDigest'>, digest: string): Promise<SessionRecord | undefined> {
    try {
      return await from.findByDigest(digest)
    } catch (err) {
      log.warn({ code: errorCode(err) }, 'postgres lookup failed')
      throw new DependencyUnavailableError()
    }
  }

  // Writes the entry; 'written' only when Redis took it.
  async function tryFill (digest: string, record: SessionRecord, epochAtRead: string, readStartedAt: number): Promise<'written' | 'refused' | 'failed'> {
    try {
      if (beforeFill !== undefined) await beforeFill(digest)
      const result = await cache!.fill(digest, record, epochAtRead, readStartedAt)
      if (result === 'refused') fillsRefused.inc()
      return result
    } catch {
      return 'failed'
    }
  }

  const idleAfter = idle?.afterMs ?? Infinity
  const idleFor = (record: SessionRecord, now: number) => now - (record.lastActivityAt ?? record.createdAt) > idleAfter

  function answer (record: SessionRecord | undefined): Lookup {
    if (record === undefined) return { status: 'not_found' }
    const now = Date.now()
    if (record.expiresAt <= now) return { status: 'expired' }
    if (idleFor(record, now)) return { status: 'idle' }
    return { status: 'valid', record }
  }

  // A cached copy is answered only while it is live by its own fields; one
  // that looks expired or idle is judged by Postgres, whose row may say
  // otherwise (a sliding expiry moved, another instance saw it in use).
  const live = (record: SessionRecord) => {
    const now = Date.now()
    return record.expiresAt > now && !idleFor(record, now)
  }

  async function lookup (digest: string, fill: boolean): Promise<Lookup> {
    const epochAtRead = coherence.epoch
    const readStartedAt = Date.now()
    // Fill only under the epoch the read began in: a move during the read may
    // stand for a change this read did not see.
    const mayFill = fill && epochAtRead !== undefined && coherence.sharedReadable()
    if (mayFill && replica?.usable() === true) {
      // A replica may lag: only a positive answer that Redis accepts (no
      // tombstone, so not revoked meanwhile) stands. Anything else is
      // confirmed on the primary, so a session created a moment ago is valid
      // and a revoked one is never resurrected from a stale replica.
      let record: SessionRecord | undefined
      try {
        record = await replica.find(digest)
      } catch {
        record = undefined
      }
      if (record !== undefined && record.expiresAt > Date.now() && epochAtRead === coherence.epoch &&
          await tryFill(digest, record, epochAtRead, readStartedAt) === 'written') {
        return { status: 'valid', record }
      }
      replica.confirmed()
      return answer(await read(store, digest))
    }
    const result = answer(await read(store, digest))
    if (result.status === 'valid' && mayFill && epochAtRead === coherence.epoch) await tryFill(digest, result.record, epochAtRead!, readStartedAt)
    return result
  }

  // Concurrent misses for one digest share one Postgres query and one fill.
  function singleFlight (digest: string, fill: boolean): Promise<Lookup> {
    let pending = inflight.get(digest)
    if (pending === undefined) {
      pending = lookup(digest, fill).finally(() => inflight.delete(digest))
      inflight.set(digest, pending)
    }
    return pending
  }

  function remember (digest: string, record: SessionRecord, seq: number): void {
    if (local !== undefined && coherence.localServable()) local.set(digest, record, seq)
  }

  return {
    get epoch () { return coherence.epoch },
    get cacheEnabled () { return cache !== undefined || local !== undefined },

    async validate (digest, gate, context) {
      // Read before any await: a fill that an invalidation overtakes gives up.
      const seq = local?.seq ?? 0
      let status: CacheStatus = 'bypass'
      // The lease is checked here, when answering: after a freeze, a request
      // may run before the invalidations already waiting in the socket.
      if (local !== undefined && coherence.localServable()) {
        const record = local.get(digest)
        if (record !== undefined && live(record)) {
          localHits.inc()
          activity.touch(record.id)
          return { status: 'valid', record, cache: 'hit', tier: 'local' }
        }
        localMisses.inc()
        status = 'miss'
      }
      let redisAnswered = false
      if (coherence.sharedReadable()) {
        try {
          const entry = await cache!.get(digest)
          redisAnswered = true
          status = 'miss'
          if (entry !== undefined) {
            if (entry.epoch === coherence.epoch && live(entry.record)) {
              redisHits.inc()
              activity.touch(entry.record.id)
              if (coherence.sharedCopyable()) remember(digest, entry.record, seq)
              return { status: 'valid', record: entry.record, cache: 'hit', tier: 'redis' }
            }
            if (entry.epoch !== coherence.epoch) byEpoch.inc()
          }
        } catch {
          // counted in session_cache_errors_total; Postgres answers instead
        }
      }
      if (status === 'miss') misses.inc()
      // no cache answered: this lookup costs Postgres a query
      const charge = gate?.admit(context!)
      const result = await singleFlight(digest, redisAnswered)
      if (result.status !== 'valid') {
        gate?.failed(charge)
        return { status: result.status, cache: status }
      }
      activity.touch(result.record.id)
      remember(digest, result.record, seq)
      return { status: 'valid', record: result.record, cache: status }
    },

    async listSessions (userId, limit, after) {
      try {
        return await store.listSessions(userId, limit, after, idle === undefined ? undefined : Date.now() - idle.afterMs)
      } catch (err) {
        log.warn({ code: errorCode(err) }, 'listing sessions failed')
        throw new DependencyUnavailableError()
      }
    },

    async revoke (target) {
      let committedAt = 0
      let outcome: { count: number, digests: string[], movedTo: string | undefined }
      // All of a user's sessions: also what the user index names. All but one:
      // exactly the deleted ones, so that the one kept stays cached.
      const userId = 'userId' in target && target.keep === undefined ? target.userId : undefined
      try {
        outcome = await store.revoke(target, async (revoked, moveEpoch) => {
          const digests = revoked.map(r => r.digest)
          if ('digest' in target && !digests.includes(target.digest)) digests.push(target.digest)
          // Inside the transaction: if Redis cannot be told, the epoch move
          // commits together with the delete, or neither does.
          const movedTo = await coherence.forgetShared(digests, userId, moveEpoch)
          return { count: revoked.length, digests, movedTo }
        })
        committedAt = performance.now()
      } catch (err) {
        log.warn({ code: errorCode(err) }, 'revoke failed')
        throw new DependencyUnavailableError()
      }
      await coherence.forgetEverywhere(outcome.digests, userId, committedAt, outcome.movedTo)
      return outcome.count
    }
  }
}
