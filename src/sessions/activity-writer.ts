// last_activity_at, written behind in small batches.
import type { FastifyBaseLogger } from 'fastify'
import { failureLog } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { SessionStore, Sliding } from './session-store.js'

export interface ActivityWriter {
  /**
   * A session was used (an answer not from memory): queued unless it was
   * lately. Returns the generation it was last queued in (0: not queued).
   */
  touch(sessionId: string): number
  /**
   * Advances every resolution. Memory stamps each entry with the generation
   * it was queued in, and queues it again only when its stamp is neither this
   * generation nor the last: the same rule as touch(), without a set entry.
   */
  readonly generation: number
  /** A session memory found due (its stamp older than the last generation). */
  queue(sessionId: string): void
  flush(): Promise<void>
  close(): Promise<void>
}

// During a long Postgres outage, activity beyond this many sessions is dropped
// rather than held: it is a convenience column, not a guarantee.
const MAX_PENDING = 100_000
// Sessions per UPDATE, and how often: small statements often rather than a
// large one every second, so that neither the event loop nor Postgres (which
// shares the CPU on small hosts) takes the work in one lump (measured: 250 ids
// cost the event loop about 0.4 ms to send). A full batch is written at once;
// the timer writes what is left.
const BATCH = 250
const FLUSH_EVERY_MS = 100

// last_activity_at (and, with sliding expiry, expires_at) is written behind,
// in batches: at most one write per session per resolution, one UPDATE per
// flush, never one per request. The time written is the flush's (Postgres'
// now()), at most FLUSH_EVERY_MS late.
//
// "Written lately" is two generations, advanced every resolution: a session
// seen in either is not queued again. That holds back a session for between
// one and two resolutions. Memory keeps the generation in its entries (a
// number in a typed array); the others are remembered in two sets, swapped
// with the generation, with no per-session timestamps to keep or sweep.
export function createActivityWriter (store: SessionStore, resolutionSeconds: number, sliding: Sliding | undefined, metrics: Metrics, log: FastifyBaseLogger): ActivityWriter {
  let current = new Set<string>()
  let previous = new Set<string>()
  let pending = new Set<string>()
  let flushing: Promise<void> | undefined
  let scheduled = false
  let closed = false
  let lost = 0
  const failures = failureLog(code => log.warn({ code }, 'activity flushes failing; kept for the next one'), () => log.info('activity flushes written again'))
  // starts at 2: a stamp of 0 (never queued) is never this one or the last
  let generation = 2
  const rotation = setInterval(() => {
    previous = current
    current = new Set()
    generation++
  }, resolutionSeconds * 1000)
  rotation.unref()
  const timer = setInterval(() => { flush().catch(() => {}) }, Math.min(resolutionSeconds * 1000, FLUSH_EVERY_MS))
  timer.unref()

  async function writeBatch (ids: string[]): Promise<void> {
    try {
      await store.writeActivity(ids, sliding)
      metrics.activityWrites.inc(ids.length)
      failures.ok()
    } catch (err) {
      if (closed) {
        // Shutting down: one try only, so that a Postgres outage cannot hold
        // the exit past its grace period; what is lost is told, in a count.
        lost += ids.length + pending.size
        pending.clear()
        return
      }
      failures.failed(err)
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
    flushing = writeBatch(ids).finally(() => {
      flushing = undefined
      // a full batch waiting is written at once, not at the next tick
      if (pending.size >= BATCH) soon()
    })
    return await flushing
  }

  // A full batch does not wait for the timer: the queue stays short, so that
  // the ids in it die young instead of being promoted by the GC.
  function soon (): void {
    if (scheduled || closed) return
    scheduled = true
    setImmediate(() => {
      scheduled = false
      flush().catch(() => {})
    })
  }

  function enqueue (sessionId: string): void {
    pending.add(sessionId)
    if (pending.size >= BATCH && flushing === undefined) soon()
  }

  return {
    touch (sessionId) {
      if (current.has(sessionId)) return generation
      if (previous.has(sessionId)) return generation - 1
      if (pending.size >= MAX_PENDING) return 0
      current.add(sessionId)
      enqueue(sessionId)
      return generation
    },
    get generation () { return generation },
    queue (sessionId) {
      if (pending.size < MAX_PENDING) enqueue(sessionId)
    },
    flush,
    async close () {
      closed = true
      clearInterval(timer)
      clearInterval(rotation)
      // everything pending, a batch (one statement) at a time, until one fails
      while (pending.size > 0 || flushing !== undefined) await flush()
      if (lost > 0) log.warn({ sessions: lost }, 'activity not written at shutdown: Postgres did not take it')
    }
  }
}
