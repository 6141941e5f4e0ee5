// The coherence protocol: how every instance's memory (L1) and the shared
// Redis cache (L2) stay true to Postgres, read top to bottom.
//
// 1. Postgres is the truth. Triggers (migrations 002, 003) append every change
//    of a session or user to session_validator.changes and NOTIFY it on the
//    channel `session_validator`, both in the changing transaction.
// 2. Every instance LISTENs (notifications.ts) and applies each change at once
//    to its memory, synchronously as the notification is parsed, and to Redis
//    (entry deleted, tombstone left: tombstones.ts). Changes made straight in
//    Postgres are seen everywhere within milliseconds.
// 3. A revoke through the API deletes the row, and in the same transaction
//    tells Redis (tombstones) or, when Redis cannot be told, moves the epoch.
//    After the commit it forgets the session in its own memory, then sends a
//    barrier and waits (fan-out.ts) until every instance in the registry has
//    acknowledged it — or for the lease length, after which an instance that
//    did not hear it can no longer answer from memory (lease.ts).
// 4. An instance answers from memory only while it holds a lease: a probe sent
//    on another connection came back through its listener within the lease
//    length, and its registration is current. Probes prove delivery because
//    Postgres delivers notifications in commit order. A lapse of the lease for
//    any reason (a freeze, a partition, a lost connection) empties memory
//    before the lease is held again.
// 5. LISTEN only hears what is sent while it listens. When it (re)starts, the
//    instance replays the change log into Redis from the fleet's watermark
//    (change-log.ts): "every change of a transaction below this xid has been
//    applied to this Redis", raised by instances that have heard everything
//    up to a probe. A start, a deploy or a reconnect keeps the cache warm.
// 6. The epoch (epoch.ts) moves only when nothing can prove the shared cache
//    right: no watermark in Redis (first start on it, or Redis lost its data),
//    the log pruned past the watermark (the fleet away longer than
//    CHANGE_LOG_RETENTION_SECONDS), a replay too large, a change that could not
//    be applied to Redis, or another Redis server behind the connection (a
//    failover may have lost acknowledged writes). Memory empties with every move.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../../config.js'
import type { Sql } from '../../db/postgres.js'
import type { Metrics } from '../../metrics.js'
import type { GuardedRedis } from '../../redis/guarded-redis.js'
import type { LocalCache } from '../local-cache.js'
import type { ReplicaReader } from '../replica-reader.js'
import type { SessionCache } from '../session-cache.js'
import type { SessionStore } from '../session-store.js'
import { createChangeLog } from './change-log.js'
import { createEpoch } from './epoch.js'
import { createFanOut } from './fan-out.js'
import { createLease } from './lease.js'
import { CHANNEL, type NotificationFeed } from './notifications.js'

export function newInstanceId (): string {
  return randomBytes(8).toString('hex')
}

export interface Coherence {
  /** This instance's id in the registry (random per start). */
  readonly id: string
  readonly epoch: string | undefined
  /** Redis may be read and filled: epoch known, caught up once, no move owed. */
  sharedReadable(): boolean
  /** Entries read from Redis may be copied into memory (caught up on the current subscription). */
  sharedCopyable(): boolean
  /** Hot path: this instance may answer from its own memory now. */
  localServable(): boolean
  /**
   * Inside a revoke's transaction: Redis forgets the sessions (tombstones), or,
   * when it cannot be told, the epoch moves with the delete (`moveInTx`); then
   * the epoch it moved to is returned, to be adopted once the delete commits.
   */
  forgetShared(digests: readonly string[], userId: string | undefined, moveInTx: () => Promise<string>): Promise<string | undefined>
  /** After the revoke committed: memory forgets, and no instance can answer it from memory once this returns. */
  forgetEverywhere(digests: readonly string[], userId: string | undefined, committedAt: number, movedTo: string | undefined): Promise<void>
  /** Called when the epoch moves after start (the shared cache was voided). */
  onEpochMoved(listener: (epoch: string) => void): void
  /** Prunes the change log now rather than at the next timer. */
  pruneNow(): Promise<void>
  close(): Promise<void>
}

export interface CoherenceOptions {
  config: Pick<Config, 'localCacheLeaseMs' | 'changeLogRetentionSeconds' | 'sessionCachePrefix'>
  id: string
  feed: NotificationFeed
  /** A connection of its own for probes, registration, barriers and acks. */
  prober: Sql
  store: SessionStore
  redis: GuardedRedis | undefined
  cache: SessionCache | undefined
  local: LocalCache | undefined
  replica: ReplicaReader | undefined
  metrics: Metrics
  log: FastifyBaseLogger
}

const DIGEST = /^[0-9a-f]{64}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function createCoherence (o: CoherenceOptions): Coherence {
  const { cache, local, metrics, id } = o
  const channel = `sv_${id}`
  const byRevoke = metrics.cacheInvalidations.labels('revoke')
  const byNotify = metrics.cacheInvalidations.labels('notify')
  const notified = {
    session: metrics.notifications.labels('session'),
    user: metrics.notifications.labels('user'),
    epoch: metrics.notifications.labels('epoch'),
    barrier: metrics.notifications.labels('barrier'),
    other: metrics.notifications.labels('other')
  }

  const moved: Array<(epoch: string) => void> = []
  const epoch = createEpoch(o.store, metrics, o.log, (next, first) => {
    local?.clear()
    if (!first) for (const listener of moved) listener(next)
  })

  // Redis forgets the digests (and, for a user, every digest its index names);
  // false when Redis could not be told.
  async function forgetInRedis (digests: readonly string[], userId: string | undefined, counter: { inc(n: number): void }): Promise<boolean> {
    if (cache === undefined) return true
    try {
      const all = userId === undefined ? digests : [...new Set([...digests, ...await cache.userDigests(userId)])]
      counter.inc(await cache.invalidate(all))
      if (userId !== undefined) await cache.forgetUserDigests(userId, all)
      return true
    } catch {
      return false
    }
  }

  const applying = new Set<Promise<void>>()
  const forgetLocally = (kind: string, key: string) => {
    if (kind === 's') local?.delete([key])
    else local?.deleteUser(key)
  }
  function apply (kind: string, key: string): Promise<void> {
    forgetLocally(kind, key)
    o.replica?.changed()
    if (cache === undefined) return Promise.resolve()
    const p = forgetInRedis(kind === 's' ? [key] : [], kind === 'u' ? key : undefined, byNotify)
      .then(async told => {
        // Until Redis was told, a lookup could read the old entry there and
        // copy it into memory: forget it in memory once more (this also makes
        // any copy still in flight give up).
        forgetLocally(kind, key)
        // Redis could not be told: void every entry cached so far instead
        if (!told) await epoch.move('redis_unreachable').catch(() => epoch.distrust('redis_unreachable'))
      })
      .finally(() => applying.delete(p))
    applying.add(p)
    return p
  }

  const changeLog = createChangeLog({
    prober: o.prober,
    redis: o.redis,
    prefix: o.config.sessionCachePrefix,
    retentionSeconds: o.config.changeLogRetentionSeconds,
    epoch,
    apply,
    pending: () => [...applying],
    metrics,
    log: o.log
  })
  const lease = createLease({
    prober: o.prober,
    id,
    channel,
    leaseMs: o.config.localCacheLeaseMs,
    register: local !== undefined,
    metrics,
    log: o.log,
    onLapse: () => local?.clear(),
    onEpoch: e => epoch.adopt(e),
    onDelivered: xmin => changeLog.heard(xmin)
  })
  const fanOut = createFanOut(o.prober, id, channel, o.config.localCacheLeaseMs, metrics)

  // Synchronous on purpose: a change is out of memory before anything that
  // follows it in the stream (a probe, a barrier) is acted on.
  function notify (on: string, payload: string): void {
    const kind = payload.slice(0, 2)
    const value = payload.slice(2)
    if (on === channel) {
      if (kind === 'p:') lease.delivered(Number(value))
      else if (kind === 'a:') {
        const [seq, from] = value.split(':')
        if (seq !== undefined && from !== undefined) fanOut.acked(seq, from)
      }
      return
    }
    if (kind === 's:' && DIGEST.test(value)) {
      notified.session.inc()
      apply('s', value).catch(() => {})
    } else if (kind === 'u:' && UUID.test(value)) {
      notified.user.inc()
      apply('u', value.toLowerCase()).catch(() => {})
    } else if (kind === 'e:' && /^\d+$/.test(value)) {
      notified.epoch.inc()
      epoch.adopt(value)
    } else if (kind === 'b:') {
      notified.barrier.inc()
      const i = value.lastIndexOf(':')
      if (local !== undefined && i > 0) fanOut.barrier(value.slice(0, i), value.slice(i + 1))
    } else {
      notified.other.inc()
    }
  }

  o.feed.start([CHANNEL, channel], {
    notify,
    up: () => changeLog.catchUp(),
    down: () => {
      lease.lost()
      changeLog.interrupted()
    }
  })
  o.redis?.onServerChange(() => epoch.distrust('redis_server_changed'))

  return {
    id,
    get epoch () { return epoch.current },
    sharedReadable: () => cache !== undefined && epoch.current !== undefined && changeLog.caughtUpOnce && !epoch.suspended,
    sharedCopyable: () => changeLog.current && !epoch.suspended,
    localServable: () => lease.valid(),

    async forgetShared (digests, userId, moveInTx) {
      if (cache === undefined || await forgetInRedis(digests, userId, byRevoke)) return undefined
      // committed together with the delete, or neither is
      return await moveInTx()
    },

    async forgetEverywhere (digests, userId, committedAt, movedTo) {
      if (movedTo !== undefined) {
        metrics.epochMoves.labels('redis_unreachable').inc()
        epoch.adopt(movedTo)
      }
      if (userId !== undefined) local?.deleteUser(userId)
      local?.delete(digests)
      await fanOut.settle(committedAt)
    },

    onEpochMoved (listener) { moved.push(listener) },
    pruneNow: () => changeLog.prune(),

    async close () {
      changeLog.close()
      await lease.close()
    }
  }
}
