// Answers counted per second of the run, to sum over any fault's window.
export interface Counts {
  /** validations answered, by HTTP status */
  statuses: Map<number, number>
  /** validations of sessions cached before (see traffic.ts), and how many of them were hits */
  counted: number
  hits: number
  /** answers to a well-formed validate without x-session-cache */
  noCacheHeader: number
  /** requests cut, or answered 503, by an instance being stopped or killed (not judged) */
  cut: number
  /** 503s while the machine stood still, no fault on (not held against the service) */
  stalled503: number
}

const empty = (): Counts => ({ statuses: new Map(), counted: 0, hits: 0, noCacheHeader: 0, cut: 0, stalled503: 0 })

export interface Tally {
  /** the counts of the second `at` (ms since the start) falls in */
  at(at: number): Counts
  sum(from: number, to: number): Counts
  /** one line a second: time, answers by status, counted, hits */
  csv(): string
}

export function tally (): Tally {
  const seconds: Counts[] = []
  return {
    at (at) {
      const i = Math.max(0, Math.floor(at / 1000))
      return (seconds[i] ??= empty())
    },
    sum (from, to) {
      const total = empty()
      for (let i = Math.max(0, Math.floor(from / 1000)); i < Math.ceil(to / 1000) && i < seconds.length; i++) {
        const c = seconds[i]
        if (c === undefined) continue
        for (const [status, n] of c.statuses) total.statuses.set(status, (total.statuses.get(status) ?? 0) + n)
        total.counted += c.counted
        total.hits += c.hits
        total.noCacheHeader += c.noCacheHeader
        total.cut += c.cut
        total.stalled503 += c.stalled503
      }
      return total
    },
    csv () {
      const statuses = [...new Set(seconds.flatMap(c => c === undefined ? [] : [...c.statuses.keys()]))].sort()
      const lines = [['second', ...statuses.map(s => `status_${s}`), 'counted', 'hits', 'no_cache_header', 'cut', 'stalled_503'].join(',')]
      seconds.forEach((c, i) => {
        if (c !== undefined) lines.push([i, ...statuses.map(s => c.statuses.get(s) ?? 0), c.counted, c.hits, c.noCacheHeader, c.cut, c.stalled503].join(','))
      })
      return lines.join('\n') + '\n'
    }
  }
}

export const answered = (c: Counts) => [...c.statuses.values()].reduce((a, b) => a + b, 0)
