import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, ownRedis } from '../helpers/redis.js'
import { testApp } from '../helpers/app.js'
import { waitFor } from '../helpers/ports.js'
import { HEARTBEAT_EVERY_MS } from '../../src/redis/heartbeat.js'

// session_cache_redis_responding: a PING a second, whatever the traffic. A
// frozen Redis (SIGSTOP) keeps the connection up, so the connected gauge
// stays 1; this one says it is not answering within seconds, on an instance
// that serves nothing at all — what the alert SessionValidatorRedisNotAnswering
// reads.

const db = await freshDatabase(t)
const redis = await ownRedis(t)
const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix: freshPrefix() })

async function gauges (): Promise<{ responding: string | undefined, connected: string | undefined }> {
  const lines = (await app.inject({ method: 'GET', url: '/metrics' })).payload.split('\n')
  const value = (name: string) => lines.find(l => l.startsWith(`${name}{dependency="redis"} `))?.split(' ')[1]
  return { responding: value('session_cache_redis_responding'), connected: value('session_cache_redis_connected') }
}

// how long until `check` holds, in seconds, polled every 50 ms
async function secondsUntil (what: string, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now()
  await waitFor(what, check, 15_000, 50)
  return (performance.now() - start) / 1000
}

t.test('an idle instance with Redis answering: 1', async t => {
  await waitFor('the first heartbeat', async () => (await gauges()).responding === '1', 5000, 50)
  t.same(await gauges(), { responding: '1', connected: '1' })
})

t.test('Redis frozen: 0 within seconds and no traffic, while the connection gauge stays 1; 1 again once thawed', async t => {
  redis.freeze()
  const down = await secondsUntil('the gauge to say 0', async () => (await gauges()).responding === '0')
  t.same(await gauges(), { responding: '0', connected: '1' }, `0 after ${down.toFixed(1)} s; still connected`)
  // a beat (1 s) plus its timeout (1 s), with room for a loaded machine
  t.ok(down < (2 * HEARTBEAT_EVERY_MS + 1000) / 1000 + 5, `within a few seconds (${down.toFixed(1)} s)`)
  redis.thaw()
  const up = await secondsUntil('the gauge to say 1', async () => (await gauges()).responding === '1')
  t.same(await gauges(), { responding: '1', connected: '1' }, `1 again ${up.toFixed(1)} s after the thaw`)
})

t.test('Redis killed: 0, and the connection gauge too; both 1 once it is back', async t => {
  await redis.kill()
  await secondsUntil('both gauges to say 0', async () => { const g = await gauges(); return g.responding === '0' && g.connected === '0' })
  t.pass('both 0')
  await redis.start()
  const up = await secondsUntil('both gauges to say 1', async () => { const g = await gauges(); return g.responding === '1' && g.connected === '1' })
  t.pass(`both 1 again ${up.toFixed(1)} s after the restart`)
})
