// Counters and histograms for series touched on every request: a child bound
// once adds to plain numbers, folded into prom-client's metric when that is
// collected (a scrape). prom-client itself builds a label key (a string) and
// a label object on every call: garbage on the hottest path. The exposition
// is prom-client's own, unchanged.
import client from '@platformatic/prom-client'

export interface HotCounter {
  labels(...values: string[]): { inc(value?: number): void }
  inc(value?: number): void
  get(): Promise<unknown>
}

export interface HotHistogram {
  labels(...values: string[]): { observe(value: number): void }
  observe(value: number): void
}

type LabelValues = Record<string, string>

function labelsOf (names: readonly string[], values: readonly string[]): LabelValues {
  const labels: LabelValues = {}
  names.forEach((name, i) => { labels[name] = values[i]! })
  return labels
}

export function hotCounter<T extends string> (config: client.CounterConfiguration<T>): HotCounter {
  const children = new Map<string, { labels: LabelValues, pending: number }>()
  const counter: client.Counter<T> = new client.Counter<T>({
    ...config,
    collect () {
      for (const child of children.values()) {
        if (child.pending === 0) continue
        counter.inc(child.labels as client.LabelValues<T>, child.pending)
        child.pending = 0
      }
    }
  })
  function labels (...values: string[]) {
    const key = values.join('\u0000')
    let child = children.get(key)
    if (child === undefined) children.set(key, child = { labels: labelsOf(config.labelNames ?? [], values), pending: 0 })
    const c = child
    return {
      inc (value = 1) {
        // inc(0) shows the series at once, as prom-client's does
        if (value === 0) counter.inc(c.labels as client.LabelValues<T>, 0)
        else c.pending += value
      }
    }
  }
  const unlabelled = labels()
  return { labels, inc: value => unlabelled.inc(value), get: () => counter.get() }
}

export function hotHistogram<T extends string> (config: client.HistogramConfiguration<T>): HotHistogram {
  const children = new Map<string, { labels: LabelValues, counts: Float64Array, sum: number, count: number }>()
  const histogram: client.Histogram<T> = new client.Histogram<T>({
    ...config,
    collect () {
      for (const p of children.values()) {
        if (p.count === 0) continue
        let entry = store().entry(p.labels)
        if (entry === undefined) {
          histogram.zero(p.labels as client.LabelValues<T>)
          entry = store().entry(p.labels)!
        }
        for (let i = 0; i < bounds.length; i++) entry.bucketValues[bounds[i]!]! += p.counts[i]!
        entry.sum += p.sum
        entry.count += p.count
        p.counts.fill(0)
        p.sum = 0
        p.count = 0
      }
    }
  })
  // prom-client's own record of a series: what a scrape reads
  const store = () => (histogram as unknown as { store: { entry(labels: LabelValues): { bucketValues: Record<string, number>, sum: number, count: number } | undefined } }).store
  const bounds: readonly number[] = (histogram as unknown as { upperBounds: number[] }).upperBounds
  function labels (...values: string[]) {
    const key = values.join('\u0000')
    let child = children.get(key)
    if (child === undefined) children.set(key, child = { labels: labelsOf(config.labelNames ?? [], values), counts: new Float64Array(bounds.length), sum: 0, count: 0 })
    const p = child
    return {
      observe (value: number) {
        // the first bucket whose bound is at least the value (le is inclusive)
        let lo = 0
        let hi = bounds.length - 1
        while (lo <= hi) {
          const mid = (lo + hi) >> 1
          if (bounds[mid]! < value) lo = mid + 1
          else hi = mid - 1
        }
        if (lo < bounds.length) p.counts[lo]!++
        p.sum += value
        p.count++
      }
    }
  }
  const unlabelled = labels()
  return { labels, observe: value => unlabelled.observe(value) }
}
