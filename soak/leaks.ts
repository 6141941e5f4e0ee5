// "Still growing over the last half", judged robustly against the sawtooth of
// a garbage-collected heap and against memory a burst of work takes and gives
// back: the series' last half is cut in two, and it grows when the floor of
// the later quarter (its 10th percentile: what is left after collections) is
// above the earlier one's by more than the tolerance, a least-squares line
// through the whole half rises as much, *and* the process still holds that
// much more once idle and fully collected (run.ts asks V8 for a collection:
// what a burst took is given back, heap and pages; a leak stays).

export interface Point { at: number, value: number }
export interface Tolerance { share: number, bytes: number }

export interface Growth {
  growing: boolean
  /** floors of the two quarters */
  earlier: number
  later: number
  /** the fitted line's rise over the half */
  rise: number
  idle: number
  points: number
}

export const MIN_POINTS = 8

function floor (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) * 0.1)]!
}

function slope (points: Point[]): number {
  const n = points.length
  const mx = points.reduce((s, p) => s + p.at, 0) / n
  const my = points.reduce((s, p) => s + p.value, 0) / n
  let num = 0
  let den = 0
  for (const p of points) {
    num += (p.at - mx) * (p.value - my)
    den += (p.at - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}

/** `half`: the points of the last half, in time order; `idle`: the value once the traffic has stopped. */
export function growth (half: Point[], idle: number, tolerance: Tolerance): Growth {
  if (half.length < MIN_POINTS) return { growing: false, earlier: NaN, later: NaN, rise: NaN, idle, points: half.length }
  const cut = half.length >> 1
  const earlier = floor(half.slice(0, cut).map(p => p.value))
  const later = floor(half.slice(cut).map(p => p.value))
  const rise = slope(half) * (half.at(-1)!.at - half[0]!.at)
  const allowed = Math.max(tolerance.bytes, tolerance.share * earlier)
  const growing = later - earlier > allowed && rise > allowed && idle - earlier > allowed
  return { growing, earlier, later, rise, idle, points: half.length }
}
