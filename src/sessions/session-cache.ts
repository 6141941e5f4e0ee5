// The shared cache (L2) in Redis: entries, tombstones and the user index.
import { Cluster } from 'ioredis'
import type { GuardedRedis } from '../redis/guarded-redis.js'
import type { RedisClient } from '../redis/redis-client.js'
import type { SessionRecord } from './session-record.js'
import { randomBytes } from 'node:crypto'
import { decodeEntry, encodeEntry, LAYOUT, type CachedEntry } from './entry-codec.js'
import { FILL, FILL_WINDOW_MS, INDEX, INVALIDATE, LEASE, LEASE_TTL_MS, READ, RELEASE, TOMBSTONE_TTL_MS } from './coherence/tombstones.js'

// Redis layout (every key starts with the prefix, so `~session:*` covers them;
// braces make a Cluster hash tag so that an entry and its tombstone share a slot):
//   <prefix>{<sha256hex>}           string: the session and its user in a compact
//                                   binary layout (entry-codec.ts), fresh for the
//                                   cache TTL, kept SESSION_CACHE_STALE_SECONDS
//                                   longer (never past expires_at) for outages
//   <prefix>{<sha256hex>}:revoked   tombstone: a fill must not write this entry
//   <prefix>{<sha256hex>}:fill      fill lease: set by a read that will fill,
//                                   deleted by an invalidation (tombstones.ts)
//   <prefix>user:{<userId>}         sorted set: the user's cached digests (32 raw
//                                   bytes each, half the hex), scored by expiry

/** What a read found: the entry (if any), and the fill lease when it is absent or of another epoch. */
export interface CacheRead {
  entry: CachedEntry | undefined
  /** Set before the caller reads Postgres; a fill must present it (undefined: the entry is of this epoch). */
  lease: string | undefined
}

interface Waiter { resolve(read: CacheRead): void, reject(err: unknown): void }

export type { CachedEntry } from './entry-codec.js'

export interface SessionCache {
  /** The entry, read under `epoch`; an entry of another epoch, or none, comes with a fill lease. */
  get(digest: string, epoch: string): Promise<CacheRead>
  /** A lease for an entry read as it is but to be refilled (stale, or past its own expiry). */
  lease(digest: string): Promise<string>
  /** Gives a lease back: its lookup found no session (no negative entries, not even a lease). */
  release(digest: string, lease: string): Promise<void>
  /** Writes the entry, if `lease` (taken before Postgres was read) is still there and no tombstone is. */
  fill(digest: string, record: SessionRecord, epoch: string, readStartedAt: number, lease: string): Promise<'written' | 'refused'>
  invalidate(digests: readonly string[]): Promise<number>
  userDigests(userId: string): Promise<string[]>
  forgetUserDigests(userId: string, digests: readonly string[]): Promise<void>
}

function defineScripts (client: RedisClient): void {
  if (Object.hasOwn(client, 'svFill')) return
  client.defineCommand('svRead', { numberOfKeys: 2, lua: READ })
  client.defineCommand('svLease', { numberOfKeys: 1, lua: LEASE })
  client.defineCommand('svRelease', { numberOfKeys: 1, lua: RELEASE })
  client.defineCommand('svFill', { numberOfKeys: 4, lua: FILL })
  client.defineCommand('svFillEntry', { numberOfKeys: 3, lua: FILL })
  client.defineCommand('svIndexAdd', { numberOfKeys: 1, lua: INDEX })
  client.defineCommand('svInvalidate', { numberOfKeys: 3, lua: INVALIDATE })
}

export function createSessionCache (redis: GuardedRedis, prefix: string, ttlSeconds: number, staleSeconds: number, extraCount = 0): SessionCache {
  const client = redis.client
  defineScripts(client)
  // Redis' own expiry: the cache TTL and the stale allowance (docs/guarantees.md)
  const ttlCapMs = (ttlSeconds + staleSeconds) * 1000
  const freshMs = ttlSeconds * 1000
  const entryKey = (digest: string) => `${prefix}{${digest}}`
  const tombstoneKey = (digest: string) => `${prefix}{${digest}}:revoked`
  const leaseKey = (digest: string) => `${prefix}{${digest}}:fill`
  // lease tokens: unique per process and read
  const tokenBase = randomBytes(6).toString('base64url')
  let tokens = 0
  const token = () => tokenBase + (tokens++).toString(36)
  // what an entry of the current epoch starts with (entry-codec.ts)
  let headOf = { epoch: '', head: Buffer.alloc(0) }
  const head = (epoch: string) => {
    if (headOf.epoch !== epoch) headOf = { epoch, head: Buffer.concat([Buffer.of(LAYOUT, epoch.length), Buffer.from(epoch, 'latin1')]) }
    return headOf.head
  }
  const indexKey = (userId: string) => `${prefix}user:{${userId}}`
  const cluster = client instanceof Cluster

  // Reads of one event-loop turn run under one timeout and one breaker call
  // (auto-pipelining already sends them in one write): the policy's timer and
  // bookkeeping are paid per turn, not per validation. Reads of one digest in
  // a turn share one call (and one lease). Each digest keeps its own answer;
  // the batch counts as failed only when no read succeeded.
  let pending: Map<string, Waiter[]> | undefined
  let pendingEpoch = ''
  function readBatch (batch: Map<string, Waiter[]>, epoch: string): void {
    const digests = [...batch.keys()]
    redis.run('get', async () => {
      const results = await Promise.allSettled(digests.map(d => client.svReadBuffer(entryKey(d), leaseKey(d), token(), LEASE_TTL_MS, head(epoch))))
      if (results.every(r => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason
      return results
    }).then(results => {
      results.forEach((result, i) => {
        const waiters = batch.get(digests[i]!)!
        if (result.status === 'fulfilled') {
          const [value, lease] = result.value
          const read = { entry: value === null ? undefined : decodeEntry(value, extraCount), lease: lease?.toString('latin1') }
          for (const w of waiters) w.resolve(read)
        } else {
          for (const w of waiters) w.reject(result.reason)
        }
      })
    }, (err: unknown) => {
      for (const waiters of batch.values()) for (const w of waiters) w.reject(err)
    })
  }

  async function invalidateOne (digest: string): Promise<number> {
    return await redis.run('invalidate', () => client.svInvalidate(entryKey(digest), tombstoneKey(digest), leaseKey(digest), TOMBSTONE_TTL_MS))
  }

  return {
    get (digest, epoch) {
      return new Promise<CacheRead>((resolve, reject) => {
        // a batch reads under one epoch: a move mid-turn starts another
        if (pending === undefined || pendingEpoch !== epoch) {
          const batch = pending = new Map()
          pendingEpoch = epoch
          setImmediate(() => {
            if (pending === batch) pending = undefined
            readBatch(batch, epoch)
          })
        }
        const waiters = pending.get(digest)
        if (waiters === undefined) pending.set(digest, [{ resolve, reject }])
        else waiters.push({ resolve, reject })
      })
    },

    async lease (digest) {
      return await redis.run('lease', () => client.svLease(leaseKey(digest), token(), LEASE_TTL_MS))
    },

    async release (digest, lease) {
      await redis.run('release', () => client.svRelease(leaseKey(digest), lease))
    },

    async fill (digest, record, epoch, readStartedAt, lease) {
      const deadline = readStartedAt + FILL_WINDOW_MS
      const value = encodeEntry(record, epoch, readStartedAt + freshMs)
      const member = Buffer.from(digest, 'hex')
      if (!cluster) {
        // one script: entry, tombstone check and user index together
        const n = await redis.run('fill', () =>
          client.svFill(entryKey(digest), tombstoneKey(digest), leaseKey(digest), indexKey(record.userId), deadline, record.expiresAt, ttlCapMs, value, lease, member))
        return n === 1 ? 'written' : 'refused'
      }
      // A Cluster keeps the user index in another slot: two commands, sent
      // together (one round trip), the entry undone if the index failed.
      const indexed = redis.run('index_add', () => client.svIndexAdd(indexKey(record.userId), record.expiresAt, ttlCapMs, member))
      const written = redis.run('fill', () => client.svFillEntry(entryKey(digest), tombstoneKey(digest), leaseKey(digest), deadline, record.expiresAt, ttlCapMs, value, lease))
      const [index, fill] = await Promise.allSettled([indexed, written])
      if (fill.status === 'rejected') throw fill.reason
      if (index.status === 'rejected') {
        // an entry the user index does not name could outlive a user change
        if (fill.value === 1) await client.del(entryKey(digest)).catch(() => {})
        throw index.reason
      }
      return fill.value === 1 ? 'written' : 'refused'
    },

    async invalidate (digests) {
      const results = await Promise.all(digests.map(invalidateOne))
      let removed = 0
      for (const n of results) removed += n
      return removed
    },

    async userDigests (userId) {
      const members = await redis.run('zrange', () => client.zrangeBuffer(indexKey(userId), '0', '-1'))
      return members.map(m => m.toString('hex'))
    },

    async forgetUserDigests (userId, digests) {
      // ZREM, not DEL: a fill for a new session may have joined the index meanwhile
      if (digests.length > 0) await redis.run('zrem', () => client.zrem(indexKey(userId), ...digests.map(d => Buffer.from(d, 'hex'))))
    }
  }
}
