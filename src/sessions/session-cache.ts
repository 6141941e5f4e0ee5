import type { GuardedRedis, RedisClient } from '../redis/guarded-redis.js'
import type { SessionRecord } from './session-record.js'

// Redis layout (every key starts with the prefix, so `~session:*` covers them;
// braces make a Cluster hash tag so that an entry and its tombstone share a slot):
//   <prefix>{<sha256hex>}           hash: the session and its user, with a TTL
//   <prefix>{<sha256hex>}:revoked   tombstone: a fill must not write this entry
//   <prefix>user:{<userId>}         sorted set: the user's cached digests, scored by expiry

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
  username: 'h'
} as const
const FIELD_LIST = Object.values(F)

// How long after its Postgres read a fill may still land, by Redis' clock, and
// how long a tombstone lives: far longer than any fill window plus clock skew.
export const FILL_WINDOW_MS = 2000
export const TOMBSTONE_TTL_MS = 60_000

// Writes the entry with its expiry in one step, unless a tombstone exists or the
// fill is late (a command abandoned by our timeout and delivered afterwards).
const FILL = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[1]) then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local expireAt = math.min(tonumber(ARGV[2]), now + tonumber(ARGV[3]))
if expireAt <= now then return -2 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], expireAt)
return 1`

// Deletes the entry and leaves a tombstone, so that a fill that read the row
// before it was deleted cannot write it back (no resurrection).
const INVALIDATE = `
local n = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return n`

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
  svIndexAdd(index: string, digest: string, score: number): Promise<number>
}

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

function nullable (value: string | null | undefined): string | null {
  return value === undefined ? null : value
}

function decode (values: Array<string | null>): CachedEntry | undefined {
  const [epoch, id, userId, expiresAt, createdAt, lastActivityAt, ipAddress, userAgent, email, firstName, lastName, username] = values
  // An entry missing any required field (half-written by hand, older layout)
  // is treated as absent, never trusted.
  if (epoch == null || id == null || userId == null || expiresAt == null || createdAt == null || email == null) return undefined
  return {
    epoch,
    record: {
      id,
      userId,
      expiresAt: Number(expiresAt),
      createdAt: Number(createdAt),
      lastActivityAt: lastActivityAt == null ? null : Number(lastActivityAt),
      ipAddress: nullable(ipAddress),
      userAgent: nullable(userAgent),
      email,
      firstName: nullable(firstName),
      lastName: nullable(lastName),
      username: nullable(username)
    }
  }
}

function encode (record: SessionRecord, epoch: string): string[] {
  const out: string[] = [
    F.epoch, epoch, F.id, record.id, F.userId, record.userId,
    F.expiresAt, String(record.expiresAt), F.createdAt, String(record.createdAt), F.email, record.email
  ]
  if (record.lastActivityAt !== null) out.push(F.lastActivityAt, String(record.lastActivityAt))
  if (record.ipAddress !== null) out.push(F.ipAddress, record.ipAddress)
  if (record.userAgent !== null) out.push(F.userAgent, record.userAgent)
  if (record.firstName !== null) out.push(F.firstName, record.firstName)
  if (record.lastName !== null) out.push(F.lastName, record.lastName)
  if (record.username !== null) out.push(F.username, record.username)
  return out
}

export function createSessionCache (redis: GuardedRedis, prefix: string, ttlSeconds: number): SessionCache {
  const client = redis.client
  defineScripts(client)
  const scripted = client as unknown as ScriptedRedis
  const ttlCapMs = ttlSeconds * 1000
  const entryKey = (digest: string) => `${prefix}{${digest}}`
  const tombstoneKey = (digest: string) => `${prefix}{${digest}}:revoked`
  const indexKey = (userId: string) => `${prefix}user:{${userId}}`

  async function invalidateOne (digest: string): Promise<number> {
    return await redis.run('invalidate', () => scripted.svInvalidate(entryKey(digest), tombstoneKey(digest), TOMBSTONE_TTL_MS))
  }

  return {
    async get (digest) {
      const key = entryKey(digest)
      const values = await redis.run('hmget', () => client.hmget(key, ...FIELD_LIST))
      return decode(values)
    },

    async fill (digest, record, epoch, readStartedAt) {
      const deadline = readStartedAt + FILL_WINDOW_MS
      // Index first, on the same connection and in the same tick (auto-
      // pipelined: one round trip), so no entry exists that the index misses.
      const indexed = redis.run('index_add', () =>
        scripted.svIndexAdd(indexKey(record.userId), digest, Math.min(record.expiresAt, deadline + ttlCapMs)))
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
      return await redis.run('zrange', () => client.zrange(indexKey(userId), '0', '-1'))
    },

    async forgetUserDigests (userId, digests) {
      // ZREM, not DEL: a fill for a new session may have joined the index meanwhile
      if (digests.length > 0) await redis.run('zrem', () => client.zrem(indexKey(userId), ...digests))
    }
  }
}
