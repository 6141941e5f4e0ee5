// The fewest Postgres queries any cache could make on a Zipf stream: one per
// session on its first request (no entry expires within a mixed run, the TTL
// being longer). Expected distinct sessions after m draws over 1..n with
// exponent s: sum over k of 1 - (1 - p_k)^m.
export function expectedDistinct (n: number, s: number, m: number): number {
  let norm = 0
  for (let k = 1; k <= n; k++) norm += Math.pow(k, -s)
  let distinct = 0
  for (let k = 1; k <= n; k++) {
    const p = Math.pow(k, -s) / norm
    distinct += -Math.expm1(m * Math.log1p(-p))
  }
  return distinct
}

// Compulsory misses per validation between m0 and m1 validations into the run.
export function floorBetween (n: number, s: number, m0: number, m1: number): number {
  if (m1 <= m0) return Number.NaN
  return (expectedDistinct(n, s, m1) - expectedDistinct(n, s, m0)) / (m1 - m0)
}
