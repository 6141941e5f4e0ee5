// Warming the shared cache after the epoch moved (every entry was voided):
// the most recently active sessions are read from Postgres in pages and
// written through the same fill script as a miss, each under a fill lease
// taken after the page's read and before a check that its rows still exist,
// so a revoke racing the warm-up still wins whatever Redis evicts (lease,
// tombstone, fill deadline, epoch). One instance per epoch does it: the
// first to claim it in Redis.
import type { FastifyBaseLogger } from 'fastify'
import { failureLog } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { GuardedRedis } from '../redis/guarded-redis.js'
import type { Coherence, ReadTicket } from './coherence/index.js'
import { memoryKey, type MemoryKey } from './local-cache.js'
import { inSlices } from './in-slices.js'
import type { SessionCache } from './session-cache.js'
import type { SessionRecord } from './session-record.js'
import type { ListPosition, SessionStore } from './session-store.js'

export interface WarmUpOptions {
  store: SessionStore
  cache: SessionCache
  redis: GuardedRedis
  coherence: Coherence
  /** Keeps a warmed session in this instance's memory too, if the ticket allows (SessionService.remember). */
  remember(ticket: ReadTicket, key: MemoryKey, record: SessionRecord): void
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

// A page is read and filled well within the fill window (2 s by Redis' clock),
// its fills sent a slice per turn of the event loop (well under 1 ms each).
const PAGE = 250
const FILL_SLICE = 50
const CLAIM_MS = 10 * 60_000
// A run that failed (Redis or Postgres away: the very outages that move the
// epoch) is tried again while its epoch stays, so that the cache is warm soon
// after the dependency is back rather than filled miss by miss.
const RETRY_MS = 2000
const RETRIES = 60

export function startWarmUp (o: WarmUpOptions): { close(): void } {
  const state = { closed: false }
  const warmed = o.metrics.cacheWarmed
  const duration = o.metrics.cacheWarmDuration
  const runs = o.metrics.cacheWarmRuns

  async function warm (epoch: string): Promise<'done' | 'skipped' | 'interrupted'> {
    // the move may come from inside a catch-up: wait until Redis is read again
    for (let i = 0; i < 100 && !state.closed && !o.coherence.sharedReadable(); i++) await new Promise(resolve => setTimeout(resolve, 50).unref())
    if (state.closed || o.coherence.epoch !== epoch || !o.coherence.sharedReadable()) return 'interrupted'
    const claim = `${o.prefix}coherence:warm:${epoch}`
    const claimed = await o.redis.run('warm_claim', () => o.redis.client.set(claim, o.coherence.id, 'PX', CLAIM_MS, 'NX'))
    // a claim of our own is a run of ours that failed: this is its retry
    if (claimed !== 'OK' && await o.redis.run('warm_claim', () => o.redis.client.get(claim)) !== o.coherence.id) return 'skipped'
    const start = performance.now()
    let after: ListPosition | undefined
    let done = 0
    while (done < o.sessions) {
      if (state.closed || o.coherence.epoch !== epoch || !o.coherence.sharedReadable()) return 'interrupted'
      const ticket = o.coherence.ticket()
      const readStartedAt = Date.now()
      const page = await o.store.warmPage(Math.min(PAGE, o.sessions - done), after)
      if (page.length === 0) break
      // a move during the read may stand for a change this page did not see
      if (o.coherence.epoch !== epoch) return 'interrupted'
      if (o.beforeFill !== undefined) await o.beforeFill(page[0]!.digest)
      // leases first, then the rows still there: a revoke before the lease
      // took the row, one after it took the lease
      const leases = new Map<string, string>()
      await inSlices(page, FILL_SLICE, async slice => {
        const taken = await Promise.all(slice.map(p => o.cache.lease(p.digest).catch(() => undefined)))
        taken.forEach((lease, i) => { if (lease !== undefined) leases.set(slice[i]!.digest, lease) })
      })
      const there = await o.store.existing(page.filter(p => leases.has(p.digest)).map(p => p.record.id))
      const fillable = page.filter(p => there.has(p.record.id))
      let written = 0
      await inSlices(fillable, FILL_SLICE, async slice => {
        const results = await Promise.all(slice.map(p => o.cache.fill(p.digest, p.record, epoch, readStartedAt, leases.get(p.digest)!).catch(() => 'failed' as const)))
        results.forEach((result, i) => {
          if (result !== 'written') return
          written++
          o.remember(ticket, memoryKey(slice[i]!.digest), slice[i]!.record)
        })
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
  // a Redis or Postgres outage fails every run it moves the epoch for: told once
  const failures = failureLog(code => o.log.warn({ code }, 'warming the shared cache failed; it fills on demand'))
  let latest: string | undefined
  let retries = 0
  function retryLater (epoch: string): void {
    if (state.closed || retries >= RETRIES) return
    retries++
    setTimeout(() => {
      if (state.closed || o.coherence.epoch !== epoch || latest !== undefined) return
      latest = epoch
      if (!running) run().catch(() => {})
    }, RETRY_MS).unref()
  }
  async function run (): Promise<void> {
    running = true
    while (latest !== undefined && !state.closed) {
      const epoch = latest
      latest = undefined
      try {
        runs.labels(await warm(epoch)).inc()
        failures.ok()
      } catch (err) {
        runs.labels('failed').inc()
        failures.failed(err)
        retryLater(epoch)
      }
    }
    running = false
  }
  o.coherence.onEpochMoved(epoch => {
    latest = epoch
    retries = 0
    if (!running && !state.closed) run().catch(() => {})
  })
  return { close () { state.closed = true } }
}
