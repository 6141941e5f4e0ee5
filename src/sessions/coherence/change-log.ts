// Catching up instead of flushing: when LISTEN (re)starts, the shared cache is
// brought up to date by replaying the change log from the fleet's watermark,
// and the epoch moves only when that cannot be proven enough.
import type { FastifyBaseLogger } from 'fastify'
import type { Sql } from '../../db/postgres.js'
import { errorCode } from '../../errors.js'
import type { Metrics } from '../../metrics.js'
import type { GuardedRedis } from '../../redis/guarded-redis.js'
import { inSlices } from '../in-slices.js'
import type { Epoch } from './epoch.js'

export interface ChangeLog {
  /** LISTEN is in effect on a fresh connection: replay what may have been missed. */
  catchUp(): void
  /** The listener is down: this instance stops vouching for the shared cache. */
  interrupted(): void
  /** Every change of a transaction below `xmin` has been heard (a probe came back). */
  heard(xmin: string): void
  /** Caught up at least once since start (the shared cache may be read). */
  readonly caughtUpOnce: boolean
  /** Caught up on the current subscription (shared entries may be copied into memory). */
  readonly current: boolean
  /** Drops entries older than the retention (also run every minute or so). */
  prune(): Promise<void>
  close(): void
}

export interface ChangeLogOptions {
  prober: Sql
  /** Undefined with the cache off: then there is nothing to catch up. */
  redis: GuardedRedis | undefined
  prefix: string
  retentionSeconds: number
  epoch: Epoch
  /** Applies one change to memory and Redis; never rejects (it moves the epoch when Redis cannot be told). */
  apply(kind: string, key: string): Promise<void>
  /** Applications still running: a claim waits for them. */
  pending(): Array<Promise<void>>
  metrics: Metrics
  log: FastifyBaseLogger
}

// Above this many entries a replay costs more than a cold cache.
const REPLAY_MAX = 50_000
// Changes applied per turn of the event loop (each a Redis call and a memory delete).
const REPLAY_SLICE = 200
const CLAIM_EVERY_MS = 1000
const PRUNE_EVERY_MS = 60_000
const RETRY_MS = 1000

// The watermark lives in Redis, beside what it vouches for: "every change of
// a transaction below this xid has been applied to this Redis". Raised, never
// lowered; gone with the data if Redis loses it.
const CLAIM = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`

export function createChangeLog (o: ChangeLogOptions): ChangeLog {
  const key = `${o.prefix}coherence:applied`
  // the watermark outlives the log: past it, a replay could not be proven anyway
  const watermarkTtlMs = o.retentionSeconds * 2000
  const client = o.redis?.client
  if (client !== undefined && !Object.hasOwn(client, 'svClaim')) client.defineCommand('svClaim', { numberOfKeys: 1, lua: CLAIM })
  const replays = o.metrics.changeLogReplays
  const replayed = o.metrics.changeLogReplayed
  let generation = 0
  let current = false
  let caughtUpOnce = false
  let closed = false
  let lastClaim = 0
  let retry: NodeJS.Timeout | undefined

  async function claim (xmin: string): Promise<void> {
    await o.redis!.run('claim', () => client!.svClaim(key, xmin, watermarkTtlMs))
  }

  async function replay (gen: number): Promise<void> {
    const [info] = await o.prober<Array<{ epoch: string, pruned: string, xmin: string }>>`
      SELECT (SELECT epoch::text FROM session_validator.cache_epoch) AS epoch,
             (SELECT pruned_through::text FROM session_validator.change_log_state) AS pruned,
             pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`
    o.epoch.adopt(info!.epoch)
    if (o.redis === undefined) return
    const mark = await o.redis.run('watermark', () => client!.get(key))
    if (mark === null) {
      // first start on this Redis, or Redis lost its data (or evicted the key)
      await o.epoch.move('watermark_missing')
    } else if (BigInt(info!.pruned) >= BigInt(mark)) {
      // the fleet was away longer than the log is kept
      await o.epoch.move('log_pruned')
    } else {
      const rows = await o.prober<Array<{ kind: string, key: string }>>`
        SELECT kind, key FROM session_validator.changes
         WHERE xid >= ${mark}::bigint ORDER BY id LIMIT ${REPLAY_MAX + 1}`
      if (rows.length > REPLAY_MAX) {
        await o.epoch.move('replay_too_large')
      } else {
        await inSlices(rows, REPLAY_SLICE, slice => Promise.all(slice.map(r => o.apply(r.kind, r.key))))
        replays.inc()
        replayed.inc(rows.length)
      }
    }
    if (gen === generation) await claim(info!.xmin)
  }

  function catchUp (): void {
    const gen = ++generation
    current = false
    if (retry !== undefined) clearTimeout(retry)
    replay(gen).then(() => {
      if (gen !== generation) return
      current = true
      caughtUpOnce = true
    }, (err: unknown) => {
      if (gen !== generation || closed) return
      o.log.warn({ code: errorCode(err) }, 'coherence: catching up failed; retrying (the shared cache is not vouched for meanwhile)')
      retry = setTimeout(() => { if (gen === generation) catchUp() }, RETRY_MS)
      retry.unref()
    })
  }

  async function prune (): Promise<void> {
    const r = o.retentionSeconds
    // Two statements, each atomic on its own, not a sql.begin(): postgres.js
    // 3.4.9's begin() threw a TypeError out of its own handler when its
    // connection went away mid-transaction (Postgres stopped), and the
    // process exited (the 60-minute soak, docs/soak.md).
    await o.prober`
      WITH gone AS (
        DELETE FROM session_validator.changes WHERE created_at < now() - ${r} * interval '1 second' RETURNING xid)
      UPDATE session_validator.change_log_state
         SET pruned_through = greatest(pruned_through, coalesce((SELECT max(xid) FROM gone), 0))`
    await o.prober`DELETE FROM session_validator.instances WHERE lease_until < now() - interval '1 hour'`
  }
  // spread over the fleet: instances started together do not prune together
  const pruneTimer = setInterval(() => { prune().catch(() => {}) }, PRUNE_EVERY_MS + Math.floor(Math.random() * 10_000))
  pruneTimer.unref()

  return {
    catchUp,
    interrupted () {
      generation++
      current = false
    },
    heard (xmin) {
      if (!current || o.redis === undefined || o.epoch.suspended) return
      const now = performance.now()
      if (now - lastClaim < CLAIM_EVERY_MS) return
      lastClaim = now
      const gen = generation
      Promise.all(o.pending()).then(() => {
        if (gen === generation && current && !o.epoch.suspended) return claim(xmin)
      }).catch(() => {})
    },
    get caughtUpOnce () { return caughtUpOnce },
    get current () { return current },
    prune,
    close () {
      closed = true
      generation++
      clearInterval(pruneTimer)
      if (retry !== undefined) clearTimeout(retry)
    }
  }
}
