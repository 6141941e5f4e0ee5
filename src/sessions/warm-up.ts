// Warming the shared cache after the epoch moved (every entry was voided):
// the most recently active sessions are read from Postgres in pages and
// written through the same fill script as a miss, so a revoke racing the
// warm-up still wins (tombstone, fill deadline, epoch). One instance per
// epoch does it: the first to claim it in Redis.
import type { FastifyBaseLogger } from 'fastify'
import { errorCode } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { GuardedRedis } from '../redis/guarded-redis.js'
import type { Coherence } from './coherence/index.js'
import type { LocalCache } from './local-cache.js'
import type { SessionCache } from './session-cache.js'
import type { ListPosition, SessionStore } from './session-store.js'

export interface WarmUpOptions {
  store: SessionStore
  cache: SessionCache
  redis: GuardedRedis
  local: LocalCache | undefined
  coherence: Coherence
  prefix: string
  /** Sessions to warm at most (CACHE_WARM_SESSIONS). */
  sessions: number
  /** Sessions per second at most (CACHE_WARM_RATE). */
  rate: number
  metrics: Metrics
  log: FastifyBaseLogger
  /** Test seam: runs between a page's Postgres read and its fills, as for a miss. */
  beforeFill?: ((digest: string) => Promise<void>) | undefined
}

// A page is read and filled well within the fill window (2 s by Redis' clock).
const PAGE = 500
const CLAIM_MS = 10 * 60_000

export function startWarmUp (o: WarmUpOptions): { close(): void } {
  const state = { closed: false }
  const warmed = o.metrics.cacheWarmed
  const duration = o.metrics.cacheWarmDuration
  const runs = o.metrics.cacheWarmRuns

  async function warm (epoch: string): Promise<'done' | 'skipped' | 'interrupted'> {
    // the move may come from inside a catch-up: wait until Redis is read again
    for (let i = 0; i < 100 && !state.closed && !o.coherence.sharedReadable(); i++) await new Promise(resolve => setTimeout(resolve, 50).unref())
    if (state.closed || o.coherence.epoch !== epoch || !o.coherence.sharedReadable()) return 'interrupted'
    const claimed = await o.redis.run('warm_claim', () => o.redis.client.set(`${o.prefix}coherence:warm:${epoch}`, o.coherence.id, 'PX', CLAIM_MS, 'NX'))
    if (claimed !== 'OK') return 'skipped'
    const start = performance.now()
    let after: ListPosition | undefined
    let done = 0
    while (done < o.sessions) {
      if (state.closed || o.coherence.epoch !== epoch || !o.coherence.sharedReadable()) return 'interrupted'
      const seq = o.local?.seq ?? 0
      const readStartedAt = Date.now()
      const page = await o.store.warmPage(Math.min(PAGE, o.sessions - done), after)
      if (page.length === 0) break
      // a move during the read may stand for a change this page did not see
      if (o.coherence.epoch !== epoch) return 'interrupted'
      if (o.beforeFill !== undefined) await o.beforeFill(page[0]!.digest)
      const results = await Promise.all(page.map(p => o.cache.fill(p.digest, p.record, epoch, readStartedAt).catch(() => 'failed' as const)))
      let written = 0
      results.forEach((result, i) => {
        if (result !== 'written') return
        written++
        if (o.local !== undefined && o.coherence.localServable()) o.local.set(page[i]!.digest, page[i]!.record, seq)
      })
      warmed.inc(written)
      done += page.length
      after = page.at(-1)!.position
      // bounded rate: Postgres serves traffic meanwhile
      const due = start + (done / o.rate) * 1000 - performance.now()
      if (due > 0) await new Promise(resolve => setTimeout(resolve, due).unref())
    }
    duration.observe((performance.now() - start) / 1000)
    o.log.info({ sessions: done, ms: Math.round(performance.now() - start) }, 'shared cache warmed after an epoch move')
    return 'done'
  }

  // One run at a time; a move during a run starts one for the newest epoch.
  let running = false
  let latest: string | undefined
  async function run (): Promise<void> {
    running = true
    while (latest !== undefined && !state.closed) {
      const epoch = latest
      latest = undefined
      try {
        runs.labels(await warm(epoch)).inc()
      } catch (err) {
        runs.labels('failed').inc()
        o.log.warn({ code: errorCode(err) }, 'warming the shared cache failed; it fills on demand')
      }
    }
    running = false
  }
  o.coherence.onEpochMoved(epoch => {
    latest = epoch
    if (!running && !state.closed) run().catch(() => {})
  })
  return { close () { state.closed = true } }
}
