// Invalidation fan-out: after a revoke commits, wait until no other instance
// can still answer it from memory — every registered instance acknowledged,
// or the lease length passed (one that did not hear it has lost its lease).
import type { Sql } from '../../db/postgres.js'
import type { Metrics } from '../../metrics.js'
import { CHANNEL } from './notifications.js'

export interface FanOut {
  /** The revoke committed at `committedAt` (performance.now()): returns when it holds everywhere. */
  settle(committedAt: number): Promise<void>
  /** Another instance's barrier reached us (after everything it follows): acknowledge it. */
  barrier(channel: string, seq: string): void
  /** An instance acknowledged our barrier. */
  acked(seq: string, from: string): void
}

// Node's timers may fire late, never much early; the margin covers the
// difference in clock rate between two hosts over one lease, and rounding.
const SETTLE_MARGIN_MS = 25

interface Waiting { members: Set<string> | undefined, acked: Set<string>, done?: () => void }

export function createFanOut (prober: Sql, id: string, channel: string, leaseMs: number, metrics: Metrics): FanOut {
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
    async settle (committedAt) {
      const key = String(++seq)
      const w: Waiting = { members: undefined, acked: new Set() }
      waiting.set(key, w)
      const deadline = committedAt + leaseMs + SETTLE_MARGIN_MS
      let timer: NodeJS.Timeout | undefined
      const finished = new Promise<boolean>(resolve => {
        w.done = () => resolve(true)
        const check = () => {
          if (performance.now() >= deadline) resolve(false)
          else timer = setTimeout(check, Math.max(1, Math.ceil(deadline - performance.now())))
        }
        check()
      })
      // After the commit, so that an instance registering later cannot have
      // read the row before it was deleted.
      prober`
        SELECT pg_notify(${CHANNEL}, ${`b:${channel}:${key}`}),
               array(SELECT id FROM session_validator.instances
                      WHERE lease_until > clock_timestamp() AND id <> ${id}) AS members`
        .then(rows => {
          sent.inc()
          w.members = new Set((rows[0] as { members: string[] }).members)
          if (complete(w)) w.done!()
        }, () => {}) // unknown members: the lease is waited out
      const acknowledged = await finished
      clearTimeout(timer)
      waiting.delete(key)
      outcomes[acknowledged ? 'acknowledged' : 'lease_expired'].inc()
      wait.observe((performance.now() - committedAt) / 1000)
    },
    barrier (from, key) {
      if (from === channel) return
      prober`SELECT pg_notify(${from}, ${`a:${key}:${id}`})`.catch(() => {})
    },
    acked (key, from) {
      const w = waiting.get(key)
      if (w === undefined) return
      acks.inc()
      w.acked.add(from)
      if (complete(w)) w.done!()
    }
  }
}
