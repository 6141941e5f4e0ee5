// The shared cache (L2) in Redis: entries, tombstones and the user index.
import type { GuardedRedis, RedisClient } from '../redis/guarded-redis.js'
import { NO_EXTRA, type SessionRecord } from './session-record.js'
import { FILL, FILL_WINDOW_MS, INVALIDATE, TOMBSTONE_TTL_MS } from './coherence/tombstones.js'

// The shared cache (L2): session entries as Redis hashes, and the user index.
//
// Redis layout (every key starts with the prefix, so `~session:*` covers them;
// braces make a Cluster hash tag so that an entry and its tombstone share a slot):
//   <prefix>{<sha256hex>}           hash: the session and its user, with a TTL
//   <prefix>{<sha256hex>}:revoked   tombstone: a fill must not write this entry
//   <prefix>user:{<userId>}         sorted set: the user's cached digests (32 raw
//                                   bytes each, half the hex), scored by expiry

// Short field names keep the hash small (listpack encoding); absent = null.
const F = {
  epoch: 'e',
  id: 'i',
  userId: 'u',
  expiresAt: 'x',
  createdAt: 'c',
  lastActivityAt: 'l',
  ipAddress: 'a',
  userAgent: 'g',
  email: 'm',
  firstName: 'f',
  lastName: 'n',
  username: 'h',
  // the operator's extra fields, as one JSON array (in pieces when long)
  extra: 'X'
} as const

// Adds a digest to a user's index, drops members whose entries have expired,
// and keeps the index alive as long as its longest-lived member.
const INDEX_ADD = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(top[2]) + 1000)
return 1`

interface ScriptedRedis {
  svFill(entry: string, tombstone: string, deadline: number, expireAt: number, ttlCapMs: number, ...fields: string[]): Promise<number>
  svInvalidate(entry: string, tombstone: string, ttlMs: number): Promise<number>
  svIndexAdd(index: string, digest: Buffer, score: number): Promise<number>
}

interface Read { key: string, resolve(entry: CachedEntry | undefined): void, reject(err: unknown): void }

export interface CachedEntry {
  epoch: string
  record: SessionRecord
}

export interface SessionCache {
  get(digest: string): Promise<CachedEntry | undefined>
  fill(digest: string, record: SessionRecord, epoch: string, readStartedAt: number): Promise<'written' | 'refused'>
  invalidate(digests: readonly string[]): Promise<number>
  userDigests(userId: string): Promise<string[]>
  forgetUserDigests(userId: string, digests: readonly string[]): Promise<void>
}

function defineScripts (client: RedisClient): void {
  if ('svFill' in client) return
  client.defineCommand('svFill', { numberOfKeys: 2, lua: FILL })
  client.defineCommand('svInvalidate', { numberOfKeys: 2, lua: INVALIDATE })
  client.defineCommand('svIndexAdd', { numberOfKeys: 1, lua: INDEX_ADD })
}

// A value over Redis' hash-max-listpack-value (64 bytes by default) would turn
// the whole hash into a hashtable, about twice the memory: a real user agent
// is longer than that. Long values are stored in pieces of at most 64 bytes,
// cut between UTF-8 characters: field, field1, field2, ...
const PIECE_BYTES = 64

function put (out: string[], field: string, value: string | null): void {
  if (value === null) return
  // 21 UTF-16 units are at most 63 UTF-8 bytes; only longer values are measured
  if (value.length <= 21 || (value.length <= PIECE_BYTES && Buffer.byteLength(value) <= PIECE_BYTES)) {
    out.push(field, value)
    return
  }
  const bytes = Buffer.from(value)
  let start = 0
  for (let n = 0; start < bytes.length; n++) {
    let end = Math.min(start + PIECE_BYTES, bytes.length)
    while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80) end--
    out.push(n === 0 ? field : field + n, bytes.toString('utf8', start, end))
    start = end
  }
}

function take (hash: Record<string, string>, field: string): string | null {
  const first = hash[field]
  if (first === undefined) return null
  if (hash[field + '1'] === undefined) return first
  let value = first
  for (let n = 1; hash[field + n] !== undefined; n++) value += hash[field + n]
  return value
}

function decodeExtra (hash: Record<string, string>, count: number): readonly unknown[] | undefined {
  if (count === 0) return NO_EXTRA
  const text = take(hash, F.extra)
  if (text === null) return undefined
  try {
    const values = JSON.parse(text) as unknown
    return Array.isArray(values) && values.length === count ? values : undefined
  } catch {
    return undefined
  }
}

function decode (hash: Record<string, string>, extraCount: number): CachedEntry | undefined {
  const epoch = hash[F.epoch]
  const id = hash[F.id]
  const userId = hash[F.userId]
  const expiresAt = hash[F.expiresAt]
  const createdAt = hash[F.createdAt]
  const email = take(hash, F.email)
  // An entry missing any required field (half-written by hand, older layout)
  // is treated as absent, never trusted.
  if (epoch === undefined || id === undefined || userId === undefined || expiresAt === undefined || createdAt === undefined || email === null) return undefined
  // so is one written for another set of extra fields
  const extra = decodeExtra(hash, extraCount)
  if (extra === undefined) return undefined
  const lastActivityAt = hash[F.lastActivityAt]
  return {
    epoch,
    record: {
      id,
      userId,
      expiresAt: Number(expiresAt),
      createdAt: Number(createdAt),
      lastActivityAt: lastActivityAt === undefined ? null : Number(lastActivityAt),
      ipAddress: take(hash, F.ipAddress),
      userAgent: take(hash, F.userAgent),
      email,
      firstName: take(hash, F.firstName),
      lastName: take(hash, F.lastName),
      username: take(hash, F.username),
      extra
    }
  }
}

function encode (record: SessionRecord, epoch: string): string[] {
  const out: string[] = [
    F.epoch, epoch, F.id, record.id, F.userId, record.userId,
    F.expiresAt, String(record.expiresAt), F.createdAt, String(record.createdAt)
  ]
  if (record.lastActivityAt !== null) out.push(F.lastActivityAt, String(record.lastActivityAt))
  put(out, F.email, record.email)
  put(out, F.ipAddress, record.ipAddress)
  put(out, F.userAgent, record.userAgent)
  put(out, F.firstName, record.firstName)
  put(out, F.lastName, record.lastName)
  put(out, F.username, record.username)
  if (record.extra.length > 0) put(out, F.extra, JSON.stringify(record.extra))
  return out
}

export function createSessionCache (redis: GuardedRedis, prefix: string, ttlSeconds: number, extraCount = 0): SessionCache {
  const client = redis.client
  defineScripts(client)
  const scripted = client as unknown as ScriptedRedis
  const ttlCapMs = ttlSeconds * 1000
  const entryKey = (digest: string) => `${prefix}{${digest}}`
  const tombstoneKey = (digest: string) => `${prefix}{${digest}}:revoked`
  const indexKey = (userId: string) => `${prefix}user:{${userId}}`

  // Reads of one event-loop turn run under one timeout and one breaker call
  // (auto-pipelining already sends them in one write): the policy's timer and
  // bookkeeping are paid per turn, not per validation. Each read keeps its own
  // answer; the batch counts as failed only when no read succeeded.
  let pending: Read[] | undefined
  function readBatch (batch: Read[]): void {
    redis.run('hgetall', async () => {
      const results = await Promise.allSettled(batch.map(r => client.hgetall(r.key)))
      if (results.every(r => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason
      return results
    }).then(results => {
      results.forEach((result, i) => {
        if (result.status === 'fulfilled') batch[i]!.resolve(decode(result.value, extraCount))
        else batch[i]!.reject(result.reason)
      })
    }, (err: unknown) => {
      for (const r of batch) r.reject(err)
    })
  }

  async function invalidateOne (digest: string): Promise<number> {
    return await redis.run('invalidate', () => scripted.svInvalidate(entryKey(digest), tombstoneKey(digest), TOMBSTONE_TTL_MS))
  }

  return {
    get (digest) {
      return new Promise<CachedEntry | undefined>((resolve, reject) => {
        if (pending === undefined) {
          const batch = pending = []
          setImmediate(() => {
            if (pending === batch) pending = undefined
            readBatch(batch)
          })
        }
        pending.push({ key: entryKey(digest), resolve, reject })
      })
    },

    async fill (digest, record, epoch, readStartedAt) {
      const deadline = readStartedAt + FILL_WINDOW_MS
      // Index first, on the same connection and in the same tick (auto-
      // pipelined: one round trip), so no entry exists that the index misses.
      const indexed = redis.run('index_add', () =>
        scripted.svIndexAdd(indexKey(record.userId), Buffer.from(digest, 'hex'), Math.min(record.expiresAt, deadline + ttlCapMs)))
      const written = redis.run('fill', () =>
        scripted.svFill(entryKey(digest), tombstoneKey(digest), deadline, record.expiresAt, ttlCapMs, ...encode(record, epoch)))
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
