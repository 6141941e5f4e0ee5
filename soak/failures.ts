// Everything that makes the run fail, as it happens: counted by kind, the
// first few of each kind kept with their details for the report.
export interface Failure {
  at: number
  what: string
  instance?: string | undefined
  detail?: string | undefined
}

const KEEP_PER_KIND = 5

export interface Failures {
  add(f: Failure): void
  readonly count: number
  /** kind → how many, and the first few */
  byKind(): Map<string, { count: number, first: Failure[] }>
  /** how many happened in [from, to) */
  between(from: number, to: number): number
}

export function failures (log: (line: string) => void): Failures {
  const kinds = new Map<string, { count: number, first: Failure[] }>()
  const times: number[] = []
  return {
    add (f) {
      let k = kinds.get(f.what)
      if (k === undefined) kinds.set(f.what, k = { count: 0, first: [] })
      k.count++
      times.push(f.at)
      if (k.first.length < KEEP_PER_KIND) {
        k.first.push(f)
        log(`FAIL at ${(f.at / 1000).toFixed(1)} s: ${f.what}${f.instance === undefined ? '' : ` (instance ${f.instance})`}${f.detail === undefined ? '' : `: ${f.detail}`}`)
      }
    },
    get count () { return times.length },
    byKind: () => kinds,
    between: (from, to) => times.filter(t => t >= from && t < to).length
  }
}
