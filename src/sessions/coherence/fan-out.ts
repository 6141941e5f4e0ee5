// Invalidation fan-out: after a revoke commits, wait until no other instance
// can still answer it from memory — every registered instance acknowledged,
// or the lease length passed (one that did not hear it has lost its lease).
import type { Metrics } from '../../metrics.js'
import { ackMessage, barrierMessage } from './messages.js'
import type { Send } from './notifications.js'

export interface Barrier {
  /** The NOTIFY payload (on the shared channel) to send inside the revoke's transaction. */
  readonly message: string
  /**
   * The revoke committed at `committedAt` (performance.now()), when `members`
   * (unknown: undefined) were registered: resolves when it holds everywhere.
   */
  settle(committedAt: number, members: readonly string[] | undefined): Promise<void>
  /** The transaction did not commit: nothing to wait for. */
  drop(): void
}

export interface FanOut {
  open(): Barrier
  /** Another instance's barrier reached us (after everything it follows): acknowledge it. */
  barrier(channel: string, key: string): void
  /** An instance acknowledged our barrier. */
  acked(key: string, from: string): void
}

// Node's timers may fire late, never much early; the margin covers the
// difference in clock rate between two hosts over one lease, and rounding.
const SETTLE_MARGIN_MS = 25

interface Waiting { members: Set<string> | undefined, acked: Set<string>, done: (() => void) | undefined }

// The barrier travels inside the revoke's own transaction, so Postgres
// delivers it at the commit, after the delete's own notifications: the others
// start acknowledging while this instance still reads who is registered.
// Acknowledgements go out on each instance's listener connection, which
// nothing else queues on.
export function createFanOut (id: string, channel: string, leaseMs: number, send: Send, metrics: Metrics): FanOut {
  const waiting = new Map<string, Waiting>()
  let seq = 0
  const sent = metrics.invalidationsSent
  const acks = metrics.invalidationAcks
  const outcomes = { acknowledged: metrics.fanOutOutcomes.labels('acknowledged'), lease_expired: metrics.fanOutOutcomes.labels('lease_expired') }
  const wait = metrics.revokeWait

  function complete (w: Waiting): boolean {
    if (w.members === undefined) return false
    for (const m of w.members) if (!w.acked.has(m)) return false
    return true
  }

  return {
    open () {
      const key = String(++seq)
      const w: Waiting = { members: undefined, acked: new Set(), done: undefined }
      waiting.set(key, w)
      return {
        message: barrierMessage(channel, key),
        async settle (committedAt, members) {
          sent.inc()
          const deadline = committedAt + leaseMs + SETTLE_MARGIN_MS
          let timer: NodeJS.Timeout | undefined
          const acknowledged = await new Promise<boolean>(resolve => {
            w.done = () => resolve(true)
            // unknown members: the lease is waited out
            if (members !== undefined) {
              w.members = new Set(members.filter(m => m !== id))
              if (complete(w)) return resolve(true)
            }
            const check = () => {
              if (performance.now() >= deadline) resolve(false)
              else timer = setTimeout(check, Math.max(1, Math.ceil(deadline - performance.now())))
            }
            check()
          })
          clearTimeout(timer)
          waiting.delete(key)
          outcomes[acknowledged ? 'acknowledged' : 'lease_expired'].inc()
          wait.observe((performance.now() - committedAt) / 1000)
        },
        drop () { waiting.delete(key) }
      }
    },
    barrier (from, key) {
      if (from === channel) return
      send(from, ackMessage(key, id)).catch(() => {})
    },
    acked (key, from) {
      const w = waiting.get(key)
      if (w === undefined) return
      acks.inc()
      w.acked.add(from)
      if (complete(w)) w.done?.()
    }
  }
}
