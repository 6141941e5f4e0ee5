// The shared cache's half of "no resurrection": a revoke leaves a tombstone
// that a racing fill must respect, and a fill carries a deadline by Redis'
// own clock, so that a write abandoned by our timeout never lands later.

// How long after its Postgres read a fill may still land, by Redis' clock, and
// how long a tombstone lives: far longer than any fill window plus clock skew.
export const FILL_WINDOW_MS = 2000
export const TOMBSTONE_TTL_MS = 60_000

// KEYS: entry, tombstone. ARGV: deadline, expires_at, ttl cap, fields...
// Writes the entry with its expiry in one step, unless a tombstone exists or the
// fill is late (a command abandoned by our timeout and delivered afterwards).
export const FILL = `
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

// KEYS: entry, tombstone. ARGV: tombstone ttl.
// Deletes the entry and leaves a tombstone, so that a fill that read the row
// before it was deleted cannot write it back.
export const INVALIDATE = `
local n = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return n`
