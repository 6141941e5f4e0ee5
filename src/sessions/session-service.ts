import type { FastifyBaseLogger } from 'fastify'
import { DependencyUnavailableError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { ActivityWriter } from './activity-writer.js'
import type { SessionCache } from './session-cache.js'
import type { SessionRecord } from './session-record.js'
import type { SessionStore } from './session-store.js'
import type { ReplicaReader } from './replica-reader.js'

export type CacheStatus = 'hit' | 'miss' | 'bypass'

export type Validation =
  | { status: 'valid', record: SessionRecord, cache: CacheStatus }
  | { status: 'not_found' | 'expired', record?: undefined, cache: CacheStatus }

export type RevokeTarget = { digest: string } | { sessionId: string } | { userId: string }

export interface SessionService {
  validate(digest: string): Promise<Validation>
  revoke(target: RevokeTarget): Promise<number>
  handleNotification(payload: string): Promise<void>
  /** The listener is (again) subscribed: whatever was missed before is void. */
  resync(): Promise<void>
  /** Redis is another server than before: what it holds may miss invalidations. */
  redisChanged(): Promise<void>
  readonly epoch: string | undefined
  readonly cacheEnabled: boolean
}

interface Deps {
  store: SessionStore
  cache: SessionCache | undefined
  activity: ActivityWriter
  metrics: Metrics
  log: FastifyBaseLogger
  beforeFill?: ((digest: string) => Promise<void>) | undefined
  replica?: ReplicaReader | undefined
}

type Lookup = { status: 'valid', record: SessionRecord } | { status: 'not_found' | 'expired' }

const DIGEST = /^[0-9a-f]{64}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function createSessionService ({ store, cache, activity, metrics, log, beforeFill, replica }: Deps): SessionService {
  // The cache epoch, as Postgres holds it. Entries written under another epoch
  // are void. Unknown until Postgres has answered once: until then the cache is
  // not read (an entry cannot be judged without it).
  let epoch: string | undefined
  // True from a Redis server change until the epoch has moved past it.
  let suspended = false
  const inflight = new Map<string, Promise<Lookup>>()

  const hits = metrics.cacheHits
  const misses = metrics.cacheMisses
  const byEpoch = metrics.cacheInvalidations.labels('epoch')
  const byRevoke = metrics.cacheInvalidations.labels('revoke')
  const byNotify = metrics.cacheInvalidations.labels('notify')
  const fillsRefused = metrics.cacheFillsRejected

  function adoptEpoch (next: string): void {
    if (epoch === undefined || BigInt(next) > BigInt(epoch)) epoch = next
  }

  // The circuit is not checked here: an open circuit refuses at once, and only
  // a call attempted after halfOpenAfter lets cockatiel try Redis again.
  function cacheReadable (): boolean {
    return cache !== undefined && epoch !== undefined && !suspended
  }

  async function read (from: SessionStore, digest: string): Promise<SessionRecord | undefined> {
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

  async function lookup (digest: string, fill: boolean): Promise<Lookup> {
    const epochAtRead = epoch
    const readStartedAt = Date.now()
    // Fill only under the epoch the read began in: a bump during the read may
    // stand for a change this read did not see.
    const mayFill = fill && cache !== undefined && epochAtRead !== undefined && !suspended
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
      if (record !== undefined && record.expiresAt > Date.now() && epochAtRead === epoch &&
          await tryFill(digest, record, epochAtRead, readStartedAt) === 'written') {
        return { status: 'valid', record }
      }
      replica.confirmed()
      return answer(await read(store, digest))
    }
    const record = await read(store, digest)
    const result = answer(record)
    if (result.status === 'valid' && mayFill && epochAtRead === epoch) await tryFill(digest, result.record, epochAtRead, readStartedAt)
    return result
  }

  function answer (record: SessionRecord | undefined): Lookup {
    if (record === undefined) return { status: 'not_found' }
    if (record.expiresAt <= Date.now()) return { status: 'expired' }
    return { status: 'valid', record }
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

  async function invalidateOrBump (digests: string[], reason: 'revoke' | 'notify', bump: () => Promise<unknown>, userId?: string): Promise<void> {
    try {
      if (cache === undefined) return
      const all = userId === undefined ? digests : [...new Set([...digests, ...await cache.userDigests(userId)])]
      const removed = await cache.invalidate(all)
      if (userId !== undefined) await cache.forgetUserDigests(userId, all)
      ;(reason === 'revoke' ? byRevoke : byNotify).inc(removed)
    } catch {
      // Redis could not be told: void every entry cached so far instead, so
      // none of them can be served once Redis answers again.
      await bump()
      byEpoch.inc()
    }
  }

  return {
    get epoch () { return epoch },
    get cacheEnabled () { return cache !== undefined },

    async validate (digest) {
      let status: CacheStatus = 'bypass'
      if (cacheReadable()) {
        try {
          const entry = await cache!.get(digest)
          if (entry !== undefined) {
            if (entry.epoch === epoch && entry.record.expiresAt > Date.now()) {
              hits.inc()
              activity.touch(entry.record.id)
              return { status: 'valid', record: entry.record, cache: 'hit' }
            }
            if (entry.epoch !== epoch) byEpoch.inc()
          }
          status = 'miss'
          misses.inc()
        } catch {
          // counted in session_cache_errors_total; Postgres answers instead
        }
      }
      const result = await singleFlight(digest, status === 'miss')
      if (result.status === 'valid') {
        activity.touch(result.record.id)
        return { status: 'valid', record: result.record, cache: status }
      }
      return { status: result.status, cache: status }
    },

    async revoke (target) {
      try {
        return await store.revoke(target, async (revoked, bumpEpoch) => {
          const digests = revoked.map(r => r.digest)
          if ('digest' in target && !digests.includes(target.digest)) digests.push(target.digest)
          // Inside the transaction: if Redis cannot be told, the epoch bump
          // commits together with the delete, or neither does.
          await invalidateOrBump(digests, 'revoke', bumpEpoch, 'userId' in target ? target.userId : undefined)
          return revoked.length
        })
      } catch (err) {
        log.warn({ code: errorCode(err) }, 'revoke failed')
        throw new DependencyUnavailableError()
      }
    },

    async handleNotification (payload) {
      const kind = payload.slice(0, 2)
      const value = payload.slice(2)
      metrics.notifications.labels(kind === 's:' ? 'session' : kind === 'u:' ? 'user' : kind === 'e:' ? 'epoch' : 'other').inc()
      const bump = async () => adoptEpoch(await store.bumpEpoch())
      if (kind !== 'e:') replica?.changed()
      try {
        if (kind === 'e:' && /^\d+$/.test(value)) adoptEpoch(value)
        else if (kind === 's:' && DIGEST.test(value)) await invalidateOrBump([value], 'notify', bump)
        else if (kind === 'u:' && UUID.test(value)) await invalidateOrBump([], 'notify', bump, value)
      } catch (err) {
        // Neither Redis nor Postgres: the listener will see a gap and resync.
        log.error({ code: errorCode(err) }, 'could not apply an invalidation')
      }
    },

    async resync () {
      adoptEpoch(await store.bumpEpoch())
      byEpoch.inc()
      suspended = false
    },

    async redisChanged () {
      // Until the epoch moves, the cache is not read: the new server may hold
      // an entry whose invalidation the old one acknowledged and then lost.
      suspended = true
      // Gives up after a minute, leaving the cache unused (safe) until the next
      // listener resync moves the epoch anyway.
      for (let attempt = 0; attempt < 120; attempt++) {
        try {
          adoptEpoch(await store.bumpEpoch())
          byEpoch.inc()
          suspended = false
          return
        } catch (err) {
          if (attempt === 0) log.warn({ code: errorCode(err) }, 'could not move the cache epoch yet; the cache stays unused')
          await new Promise(resolve => setTimeout(resolve, 500).unref())
        }
      }
    }
  }
}

export function errorCode (err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown, name?: unknown }
    if (typeof e.code === 'string') return e.code
    if (typeof e.name === 'string') return e.name
  }
  return 'unknown'
}
