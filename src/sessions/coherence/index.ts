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
// 3. A revoke through the API (revoke() below, every step of it) deletes the
//    row, and in the same transaction tells Redis (tombstones) or, when Redis
//    cannot be told, moves the epoch; the transaction also carries a barrier,
//    which Postgres delivers to every instance at the commit. Then it forgets
//    the session in its own memory and waits (fan-out.ts) until every
//    instance registered at the commit has acknowledged the barrier — or for
//    the lease length, after which an instance that did not hear it can no
//    longer answer from memory (lease.ts).
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
//    failover may have lost acknowledged writes). Every move voids what
//    memory copied from Redis; what Postgres answered stays (notifications
//    keep it true), so that a Redis outage's moves leave memory warm.
// 7. A read takes a ticket (ticket() below) before its first await: the epoch
//    it began under, whether Redis may be read and filled, whether memory
//    may answer, and memory's sequence. What it learned is kept only if
//    nothing moved meanwhile (current(), keep()). Every message these steps
//    send is listed in messages.ts.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../../config.js'
import type { Sql } from '../../db/postgres.js'
import type { Metrics } from '../../metrics.js'
import type { GuardedRedis } from '../../redis/guarded-redis.js'
import { memoryKey, type LocalCache, type LocalEntry, type MemoryKey } from '../local-cache.js'
import type { ReplicaReader } from '../replica-reader.js'
import type { SessionCache } from '../session-cache.js'
import type { RevokeTarget, SessionStore } from '../session-store.js'
import { createChangeLog } from './change-log.js'
import { createEpoch } from './epoch.js'
import { createFanOut } from './fan-out.js'
import { createLease } from './lease.js'
import { CHANNEL, ownChannel, parseMessage } from './messages.js'
import type { NotificationFeed } from './notifications.js'

export function newInstanceId (): string {
  return randomBytes(8).toString('hex')
}

/** What a read may do, decided once, before its first await. */
export interface ReadTicket {
  /** The epoch the read began under (undefined: not known yet). */
  readonly epoch: string | undefined
  /** Redis may be read, and a Postgres answer written to it while the epoch stays. */
  readonly shared: boolean
  /** This instance may answer from its memory (its lease is held now). */
  readonly memory: boolean
  /** Memory's sequence when the read began: a fill overtaken by an invalidation gives up. */
  readonly seq: number
  /** Invalidations heard or made so far, memory or not (see unchanged()). */
  readonly changes: number
}

export interface Coherence {
  /** This instance's id in the registry (random per start). */
  readonly id: string
  readonly epoch: string | undefined
  /** Hot path: this instance may answer from its own memory now (checked when answering). */
  servable(): boolean
  /** A read's ticket. */
  ticket(): ReadTicket
  /** Nothing moved since the ticket was taken: what the read found may be written to Redis. */
  current(ticket: ReadTicket): boolean
  /** current(), and no invalidation at all since the ticket: a copy read under it may still be answered. */
  unchanged(ticket: ReadTicket): boolean
  /** Keeps an answer in memory if the ticket still allows it; `fromRedis`: copied from the shared cache. */
  keep(ticket: ReadTicket, key: MemoryKey, entry: LocalEntry, fromRedis: boolean): void
  /** Deletes the target's sessions; returns once no instance can answer any of them (see 3. above). */
  revoke(target: RevokeTarget): Promise<number>
  /** Redis may be read and filled: epoch known, caught up once, no move owed. */
  sharedReadable(): boolean
  /** Entries read from Redis may be copied into memory (caught up on the current subscription). */
  sharedCopyable(): boolean
  /** The lease is held (memory may answer). */
  localServable(): boolean
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
  /** A connection of its own for probes and registration. */
  prober: Sql
  store: SessionStore
  redis: GuardedRedis | undefined
  cache: SessionCache | undefined
  local: LocalCache | undefined
  replica: ReplicaReader | undefined
  metrics: Metrics
  log: FastifyBaseLogger
}

export function createCoherence (o: CoherenceOptions): Coherence {
  const { cache, local, metrics, id } = o
  const channel = ownChannel(id)
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
    local?.voidCopies()
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
  let changes = 0
  const forgetLocally = (kind: string, key: string) => {
    changes++
    if (kind === 's') local?.delete([memoryKey(key)])
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
  const fanOut = createFanOut(id, channel, o.config.localCacheLeaseMs, (c, payload) => o.feed.send(c, payload), metrics)

  // Synchronous on purpose: a change is out of memory before anything that
  // follows it in the stream (a probe, a barrier) is acted on.
  function notify (on: string, payload: string): void {
    const m = parseMessage(payload)
    if (on === channel) {
      if (m.kind === 'probe') lease.delivered(m.n)
      else if (m.kind === 'ack') fanOut.acked(m.key, m.from)
      return
    }
    switch (m.kind) {
      case 'session':
        notified.session.inc()
        apply('s', m.digest).catch(() => {})
        break
      case 'user':
        notified.user.inc()
        apply('u', m.userId).catch(() => {})
        break
      case 'epoch':
        notified.epoch.inc()
        epoch.adopt(m.epoch)
        break
      case 'barrier':
        notified.barrier.inc()
        if (local !== undefined) fanOut.barrier(m.channel, m.key)
        break
      default:
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

  const current = (ticket: ReadTicket) => ticket.shared && epoch.current === ticket.epoch && !epoch.suspended
  const sharedReadable = () => cache !== undefined && epoch.current !== undefined && changeLog.caughtUpOnce && !epoch.suspended
  const sharedCopyable = () => changeLog.current && !epoch.suspended

  return {
    id,
    get epoch () { return epoch.current },
    servable: () => lease.valid(),
    ticket: () => ({ epoch: epoch.current, shared: sharedReadable(), memory: local !== undefined && lease.valid(), seq: local?.seq ?? 0, changes }),
    current,
    unchanged: ticket => current(ticket) && changes === ticket.changes,

    keep (ticket, key, entry, fromRedis) {
      if (local === undefined || !lease.valid() || (fromRedis && !sharedCopyable())) return
      local.set(key, entry, ticket.seq, fromRedis)
    },

    async revoke (target) {
      // All of a user's sessions: also what the user index names. All but one:
      // exactly the deleted ones, so that the one kept stays cached.
      const userId = 'userId' in target && target.keep === undefined ? target.userId : undefined
      const barrier = fanOut.open()
      let outcome
      try {
        outcome = await o.store.revoke(target, { barrier: barrier.message, forget: digests => forgetInRedis(digests, userId, byRevoke) })
      } catch (err) {
        barrier.drop()
        throw err
      }
      if (outcome.movedTo !== undefined) {
        metrics.epochMoves.labels('redis_unreachable').inc()
        epoch.adopt(outcome.movedTo)
      }
      changes++
      if (userId !== undefined) local?.deleteUser(userId)
      local?.delete(outcome.digests.map(memoryKey))
      await barrier.settle(outcome.committedAt, outcome.members)
      return outcome.revoked.length
    },

    sharedReadable,
    sharedCopyable,
    localServable: () => lease.valid(),
    onEpochMoved (listener) { moved.push(listener) },
    pruneNow: () => changeLog.prune(),

    async close () {
      changeLog.close()
      await lease.close()
    }
  }
}
