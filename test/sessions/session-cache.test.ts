import { createHash, randomUUID } from 'node:crypto'
import t from 'tap'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.js'
import { createMetrics } from '../../src/metrics.js'
import { createGuardedRedis } from '../../src/redis/guarded-redis.js'
import { createSessionCache } from '../../src/sessions/session-cache.js'
import { NO_EXTRA, type SessionRecord } from '../../src/sessions/session-record.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { waitFor } from '../helpers/ports.js'

// The shared cache's factory on a real Redis: a read's fill lease, a fill
// that needs it, an invalidation that takes it and leaves a tombstone, the
// user index. (The races between them: revoke.test.ts, redis-eviction.test.ts.)
const url = await sharedRedisUrl()
const prefix = freshPrefix()
const inspect = inspector(t, url, prefix)
const redis = createGuardedRedis(loadConfig({ REDIS_URL: url }), createMetrics(), pino({ level: 'silent' }))
redis.connect()
t.teardown(() => redis.close())
await waitFor('redis', () => redis.client.status === 'ready')
const cache = createSessionCache(redis, prefix, 300, 3600)

const EPOCH = 'epoch-1'
let n = 0
const digest = () => createHash('sha256').update(`session-cache-${n++}`).digest('hex')
const record = (userId = randomUUID()): SessionRecord => ({
  id: randomUUID(),
  userId,
  expiresAt: Date.now() + 3_600_000,
  createdAt: Date.now() - 1000,
  lastActivityAt: null,
  ipAddress: '10.0.0.1',
  userAgent: 'tap',
  email: 'someone@example.com',
  firstName: null,
  lastName: null,
  username: 'someone',
  extra: NO_EXTRA
})
const leaseOf = (d: string) => inspect.get(`${prefix}{${d}}:fill`)

t.test('a miss comes with a fill lease, the same for every read while it is held', async t => {
  const d = digest()
  const first = await cache.get(d, EPOCH)
  t.equal(first.entry, undefined)
  t.type(first.lease, 'string')
  t.equal(await leaseOf(d), first.lease, 'the lease is in Redis before Postgres is read')
  const second = await cache.get(d, EPOCH)
  t.equal(second.lease, first.lease, 'a read while it is held shares it')
})

t.test('a fill with the lease writes the entry and hands the lease in; read back under its epoch, no lease', async t => {
  const d = digest()
  const r = record()
  const { lease } = await cache.get(d, EPOCH)
  t.equal(await cache.fill(d, r, EPOCH, Date.now(), lease!), 'written')
  t.equal(await leaseOf(d), null, 'the lease is gone with the fill')
  const read = await cache.get(d, EPOCH)
  t.equal(read.entry?.record.id, r.id)
  t.equal(read.entry?.epoch, EPOCH)
  t.equal(read.lease, undefined)
  const other = await cache.get(d, 'epoch-2')
  t.equal(other.entry?.epoch, EPOCH, 'under another epoch the entry is still read')
  t.type(other.lease, 'string', 'and comes with a lease to refill it')
  t.same(await cache.userDigests(r.userId), [d], 'the user index names it')
  await cache.forgetUserDigests(r.userId, [d])
  t.same(await cache.userDigests(r.userId), [])
})

t.test('an invalidation takes the lease and leaves a tombstone: neither the old lease nor a new one fills', async t => {
  const d = digest()
  const { lease } = await cache.get(d, EPOCH)
  await cache.invalidate([d])
  t.equal(await cache.fill(d, record(), EPOCH, Date.now(), lease!), 'refused', 'the lease taken before the revoke')
  const again = await cache.lease(d)
  t.equal(await cache.fill(d, record(), EPOCH, Date.now(), again), 'refused', 'a lease taken after it meets the tombstone')
  t.equal((await cache.get(d, EPOCH)).entry, undefined)
})

t.test('a fill is refused without its own lease, or once its window has passed', async t => {
  const d = digest()
  const { lease } = await cache.get(d, EPOCH)
  t.equal(await cache.fill(d, record(), EPOCH, Date.now(), 'not-the-lease'), 'refused')
  t.equal(await cache.fill(d, record(), EPOCH, Date.now() - 60_000, lease!), 'refused', 'a Postgres read a minute old')
  t.equal((await cache.get(d, EPOCH)).entry, undefined)
})

t.test('release hands back only its own lease', async t => {
  const d = digest()
  const { lease } = await cache.get(d, EPOCH)
  await cache.release(d, 'someone-else')
  t.equal(await leaseOf(d), lease)
  await cache.release(d, lease!)
  t.equal(await leaseOf(d), null)
})
