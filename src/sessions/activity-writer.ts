// last_activity_at, written behind in small batches.
import type { FastifyBaseLogger } from 'fastify'
import { errorCode } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { SessionStore, Sliding } from './session-store.js'

export interface ActivityWriter {
  touch(sessionId: string): void
  flush(): Promise<void>
  close(): Promise<void>
}

// During a long Postgres outage, activity beyond this many sessions is dropped
// rather than held: it is a convenience column, not a guarantee.
const MAX_PENDING = 100_000
// Sessions per UPDATE, and how often: small statements often rather than a
// large one every second, so that neither the event loop nor Postgres (which
// shares the CPU on small hosts) takes the work in one lump. 2,500 sessions a
// second can be written before the buffer grows.
const BATCH = 500
const FLUSH_EVERY_MS = 200

// last_activity_at (and, with sliding expiry, expires_at) is written behind,
// in batches: at most one write per session per resolution, one UPDATE per
// flush, never one per request. The time written is the flush's (Postgres'
// now()), at most FLUSH_EVERY_MS late.
//
// "Written lately" is two generations of sets, swapped every resolution: a
// session in either is not queued again. That holds back a session for
// between one and two resolutions, with no per-session timestamps to keep or
// sweep.
export function createActivityWriter (store: SessionStore, resolutionSeconds: number, sliding: Sliding | undefined, metrics: Metrics, log: FastifyBaseLogger): ActivityWriter {
  let current = new Set<string>()
  let previous = new Set<string>()
  let pending = new Set<string>()
  let flushing: Promise<void> | undefined
  const rotation = setInterval(() => {
    previous = current
    current = new Set()
  }, resolutionSeconds * 1000)
  rotation.unref()
  const timer = setInterval(() => { flush().catch(() => {}) }, Math.min(resolutionSeconds * 1000, FLUSH_EVERY_MS))
  timer.unref()

  async function writeBatch (ids: string[]): Promise<void> {
    try {
      await store.writeActivity(ids, sliding)
      metrics.activityWrites.inc(ids.length)
    } catch (err) {
      log.warn({ code: errorCode(err), sessions: ids.length }, 'activity flush failed; kept for the next one')
      for (const id of ids) {
        if (pending.size >= MAX_PENDING) break
        pending.add(id)
      }
    }
  }

  async function flush (): Promise<void> {
    if (flushing !== undefined) return await flushing
    if (pending.size === 0) return
    let ids: string[]
    if (pending.size <= BATCH) {
      ids = [...pending]
      pending = new Set()
    } else {
      ids = []
      for (const id of pending) {
        ids.push(id)
        pending.delete(id)
        if (ids.length === BATCH) break
      }
    }
    flushing = writeBatch(ids).finally(() => { flushing = undefined })
    return await flushing
  }

  return {
    touch (sessionId) {
      if (current.has(sessionId) || previous.has(sessionId) || pending.size >= MAX_PENDING) return
      current.add(sessionId)
      pending.add(sessionId)
    },
    flush,
    async close () {
      clearInterval(timer)
      clearInterval(rotation)
      // everything pending, a batch (one statement) at a time
      while (pending.size > 0 || flushing !== undefined) await flush()
    }
  }
}
