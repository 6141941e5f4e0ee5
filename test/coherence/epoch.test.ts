import t from 'tap'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.js'
import { createMetrics } from '../../src/metrics.js'
import { createSql } from '../../src/db/postgres.js'
import { createLimiter } from '../../src/db/limiter.js'
import { createSessionStore } from '../../src/sessions/session-store.js'
import { createEpoch } from '../../src/sessions/coherence/epoch.js'
import { freshDatabase } from '../helpers/postgres.js'
import { waitFor } from '../helpers/ports.js'

// The cache epoch's factory on a real Postgres: a move is Postgres' number,
// never goes back, and a distrust holds the shared cache unread until a move
// that started after it has landed.
const db = await freshDatabase(t)
const config = loadConfig({ DATABASE_URL: db.url })
const sql = createSql(config, db.url)
t.teardown(() => sql.end({ timeout: 1 }))
const metrics = createMetrics()
const store = createSessionStore(sql, createLimiter(config.databasePoolMax, config.databaseQueueMax), metrics, config.databaseQueryTimeoutMs)
const seen: Array<{ epoch: string, first: boolean }> = []
const epoch = createEpoch(store, metrics, pino({ level: 'silent' }), (e, first) => seen.push({ epoch: e, first }))
const inPostgres = async () => (await db.sql`SELECT epoch::text FROM session_validator.cache_epoch`)[0]!.epoch as string

t.test('unknown until a move; a move takes Postgres\' next number, and is counted by cause', async t => {
  t.equal(epoch.current, undefined)
  await epoch.move('watermark_missing')
  t.equal(epoch.current, await inPostgres())
  t.same(seen, [{ epoch: epoch.current, first: true }])
  const before = BigInt(epoch.current!)
  await epoch.move('redis_unreachable')
  t.equal(BigInt(epoch.current!), before + 1n)
  t.equal(seen.at(-1)?.first, false)
  t.match(await metrics.registry.getSingleMetricAsString('session_cache_epoch_moves_total'), /cause="redis_unreachable"} 1/)
})

t.test('adopt: a later epoch heard from another instance is taken, an earlier one never', async t => {
  const now = BigInt(epoch.current!)
  epoch.adopt(String(now - 1n))
  t.equal(epoch.current, String(now), 'never back')
  // another instance's move
  const later = (await db.sql`UPDATE session_validator.cache_epoch SET epoch = epoch + 1 RETURNING epoch::text`)[0]!.epoch as string
  epoch.adopt(later)
  t.equal(epoch.current, later)
  t.equal(BigInt(later), now + 1n)
})

t.test('distrust: suspended until a move that started after it has landed', async t => {
  const before = await inPostgres()
  epoch.distrust('redis_server_changed')
  t.equal(epoch.suspended, true, 'at once, before Postgres answered')
  await waitFor('the owed move', () => !epoch.suspended, 5000)
  t.ok(BigInt(await inPostgres()) > BigInt(before), 'Postgres moved')
  t.equal(epoch.current, await inPostgres())
})
