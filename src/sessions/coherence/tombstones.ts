// The shared cache's half of "no resurrection", three locks on one door:
// - a fill lease: the read that misses sets `<entry>:fill` to a token of its
//   own *before* Postgres is read; an invalidation deletes it; a fill lands
//   only while its token is still there. Whatever Redis evicts, an evicted
//   lease only refuses a fill: under any maxmemory policy a fill that read
//   Postgres before a revoke cannot land after the revoke reached Redis;
// - a tombstone: a revoke leaves `<entry>:revoked`, which a fill respects
//   (kept for the warm-up's fills and as a second lock);
// - a deadline by Redis' own clock, so that a write abandoned by our timeout
//   never lands later.

// How long after its Postgres read a fill may still land, by Redis' clock, and
// how long a tombstone lives: far longer than any fill window plus clock skew.
export const FILL_WINDOW_MS = 2000
export const TOMBSTONE_TTL_MS = 60_000
// A lease outlives its fill's window (a fill landing later is refused anyway,
// by the deadline), no more: a flood of unknown tokens leaves at most its
// rate times this in Redis, and each lookup that finds no session releases
// its lease at once.
export const LEASE_TTL_MS = FILL_WINDOW_MS + 1000

// KEYS: entry, lease. ARGV: token, lease ttl, the entry's expected head (its
// layout byte, epoch length and epoch). Returns { entry } when the entry is of
// this epoch, else { entry or nil, lease token }: the lease already there (set
// before this read too, so as good as a new one) or this token, set now.
export const READ = `
local v = redis.pcall('GET', KEYS[1])
-- an error reply (a hash, as versions before layout 1 wrote): absent, refilled
if type(v) == 'table' then v = false end
if v and string.sub(v, 1, #ARGV[3]) == ARGV[3] then return { v } end
local l = redis.call('GET', KEYS[2])
if not l then
  l = ARGV[1]
  redis.call('SET', KEYS[2], l, 'PX', ARGV[2])
end
return { v, l }`

// KEYS: lease. ARGV: token. Deletes the lease if it is still this one (a
// lookup that found no session to fill).
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

// KEYS: lease. ARGV: token, lease ttl. The lease for an entry read as it is
// but to be refilled all the same (stale, or past its own expiry): as READ.
export const LEASE = `
local l = redis.call('GET', KEYS[1])
if l then return l end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]`

// The user index's part of a fill: drops members whose entries have expired,
// adds this one, and keeps the index alive at least as long as its
// longest-lived member (never shortened: a ZREM leaves it as it was).
// Reads `idx` (the index key), `member` (the digest), `now` and `expireAt`.
const INDEX_ADD = `
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  redis.call('ZADD', idx, expireAt, member)
  local ttl = redis.call('PTTL', idx)
  if ttl < 0 or ttl < expireAt + 1000 - now then redis.call('PEXPIRE', idx, expireAt + 1000 - now) end`

// KEYS: entry, tombstone, lease[, user index]. ARGV: deadline, expires_at,
// ttl cap, value, lease token[, digest (32 bytes)]. Writes the entry with its expiry in one step (and names
// it in the user index when given), unless its lease is gone or another's, a
// tombstone exists, or the fill is late (a command abandoned by our timeout
// and delivered afterwards). On a single Redis or Sentinel the index is
// given: one script, one round trip. A Cluster keeps the index in another
// slot: FILL without it, and INDEX alongside, in the same round trip.
export const FILL = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[1]) then return -1 end
if redis.call('GET', KEYS[3]) ~= ARGV[5] then return 0 end
redis.call('DEL', KEYS[3])
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local expireAt = math.min(tonumber(ARGV[2]), now + tonumber(ARGV[3]))
if expireAt <= now then return -2 end
redis.call('SET', KEYS[1], ARGV[4], 'PX', expireAt - now)
if KEYS[4] then
  local idx, member = KEYS[4], ARGV[6]${INDEX_ADD}
end
return 1`

// KEYS: user index. ARGV: expires_at, ttl cap, digest (32 bytes). The
// Cluster's second command of a fill.
export const INDEX = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expireAt = math.min(tonumber(ARGV[1]), now + tonumber(ARGV[2]))
local idx, member = KEYS[1], ARGV[3]${INDEX_ADD}
return 1`

// KEYS: entry, tombstone, lease. ARGV: tombstone ttl.
// Deletes the entry and any fill lease, and leaves a tombstone, so that a
// fill that read the row before it was deleted cannot write it back.
export const INVALIDATE = `
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return n`
