import type { FastifyBaseLogger } from 'fastify'
import type { Metrics } from '../metrics.js'
import type { SessionStore } from './session-store.js'
import { errorCode } from './session-service.js'

export interface ActivityWriter {
  touch(sessionId: string): void
  flush(): Promise<void>
  close(): Promise<void>
}

// During a long Postgres outage, activity beyond this many sessions is dropped
// rather than held: it is a convenience column, not a guarantee.
const MAX_PENDING = 100_000

// last_activity_at is written behind, in batches: at most one write per session
// per resolution, one UPDATE per flush, never one per request.
export function createActivityWriter (store: SessionStore, resolutionSeconds: number, metrics: Metrics, log: FastifyBaseLogger): ActivityWriter {
  const resolutionMs = resolutionSeconds * 1000
  const lastQueued = new Map<string, number>()
  let pending = new Map<string, number>()
  let flushing: Promise<void> | undefined
  const timer = setInterval(() => { flush().catch(() => {}) }, Math.min(resolutionMs, 5000))
  timer.unref()

  async function writeBatch (batch: Map<string, number>): Promise<void> {
    const ids: string[] = []
    const at: string[] = []
    for (const [id, ms] of batch) {
      ids.push(id)
      at.push(new Date(ms).toISOString())
    }
    try {
      await store.writeActivity(ids, at)
      metrics.activityWrites.inc(ids.length)
    } catch (err) {
      log.warn({ code: errorCode(err), sessions: ids.length }, 'activity flush failed; kept for the next one')
      for (const [id, ms] of batch) {
        if (pending.size >= MAX_PENDING) break
        if (!pending.has(id)) pending.set(id, ms)
      }
    }
    const cutoff = Date.now() - resolutionMs
    for (const [id, ms] of lastQueued) if (ms <= cutoff) lastQueued.delete(id)
  }

  async function flush (): Promise<void> {
    if (flushing !== undefined) return await flushing
    if (pending.size === 0) return
    const batch = pending
    pending = new Map()
    flushing = writeBatch(batch).finally(() => { flushing = undefined })
    return await flushing
  }

  return {
    touch (sessionId) {
      const now = Date.now()
      const last = lastQueued.get(sessionId)
      if (last !== undefined && now - last < resolutionMs) return
      if (pending.size >= MAX_PENDING) return
      lastQueued.set(sessionId, now)
      pending.set(sessionId, now)
    },
    flush,
    async close () {
      clearInterval(timer)
      await flush()
      if (pending.size > 0) await flush()
    }
  }
}
