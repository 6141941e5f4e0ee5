// What happened when: each fault's start and end, which instances it cut off
// from Postgres, the machine's own stalls, and when the soak last saw Redis
// lose or void its entries.
import type { Step } from './schedule.ts'

export interface FaultRecord {
  step: Step
  title: string
  start: number
  /** when the dependency was back (or the last restarted instance serving again) */
  end: number | undefined
  /** instances (by index) that could not reach Postgres at times while it lasted */
  postgres: number[]
}

/** A moment the whole machine stood still (see stalls.ts), not a fault of the soak's. */
export interface Stall { from: number, to: number, what: string }

// A request sent this soon after Postgres came back may still meet a
// connection from before (a reset or a restart closed it under the pool).
export const POSTGRES_GRACE_MS = 5000
// after a stall, the timeouts it caused are still being answered
const STALL_GRACE_MS = 1000

export interface Timeline {
  faults: FaultRecord[]
  stalls: Stall[]
  begin(step: Step, title: string, at: number, postgres: number[]): FaultRecord
  /** A fault cut this instance off from Postgres at some moment of [from, to]. */
  postgresFaulted(instance: number, from: number, to: number): boolean
  /** The machine stalled at some moment of [from, to]: every call of the service could time out. */
  stalled(from: number, to: number): boolean
  /** entries seen in Redis before this may be gone or void (a restart of Redis, an epoch move) */
  voidedAt: number
  /** Redis was at its maxmemory, evicting, until this: an entry filled before may be gone, though the epoch did not move */
  evictedAt: number
}

export function timeline (): Timeline {
  const faults: FaultRecord[] = []
  const stalls: Stall[] = []
  return {
    faults,
    stalls,
    voidedAt: 0,
    evictedAt: 0,
    begin (step, title, at, postgres) {
      const record: FaultRecord = { step, title, start: at, end: undefined, postgres }
      faults.push(record)
      return record
    },
    postgresFaulted (instance, from, to) {
      for (let i = faults.length - 1; i >= 0; i--) {
        const f = faults[i]!
        if (!f.postgres.includes(instance)) continue
        if (f.start <= to && (f.end === undefined || from <= f.end + POSTGRES_GRACE_MS)) return true
      }
      return false
    },
    stalled (from, to) {
      for (let i = stalls.length - 1; i >= 0; i--) {
        const s = stalls[i]!
        if (s.from <= to && from <= s.to + STALL_GRACE_MS) return true
      }
      return false
    }
  }
}
