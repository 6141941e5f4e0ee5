// Which sessions each scenario names. Token n is `tok-<n>`, session n of the
// seed; the ranges past the main seed are touched by one scenario each.
export interface Range { lo: number, hi: number }

export interface TokenRanges {
  /** the main seed: miss, naive, mixed and soak choose from all of it */
  all: Range
  /** cached beforehand: L2 hit, L1 hit, fixed rate, forward auth, deploy */
  hit: Range
  /** the idle-timeout and sliding-expiry instance's own sessions, as large as the hit set */
  lifecycle: Range
  /** deleted by the revoke scenario, one by one */
  revoke: Range
}

// unmeasured revokes first: JIT, pools, the first barrier's query plan
export const REVOKE_WARMUP = 20

export function tokenRanges (sessions: number, hitSet: number, revokes: number): TokenRanges {
  const lifecycle = { lo: sessions + 1, hi: sessions + hitSet }
  return {
    all: { lo: 1, hi: sessions },
    hit: { lo: 1, hi: hitSet },
    lifecycle,
    revoke: { lo: lifecycle.hi + 1, hi: lifecycle.hi + REVOKE_WARMUP + revokes }
  }
}
