// A server's runtime over one run, from its probe (bench/runtime-probe.ts):
// what each request cost the JS heap, and what the process paused for.
import { join } from 'node:path'
import type { ProbeReading } from './runtime-probe.ts'
import { percentile } from './stats.ts'

export interface Runtime {
  /** JS-heap bytes allocated per request */
  bytesPerRequest: number
  /** bytes promoted to the old generation per request */
  promotedPerRequest: number
  gcCount: number
  scavenges: number
  markCompacts: number
  gcP99Ms: number
  gcMaxMs: number
  /** summed GC pauses, µs per request */
  gcUsPerRequest: number
  loopP99Ms: number
  loopMaxMs: number
  heapUsedMb: number
}

async function read (probe: string, path: string): Promise<ProbeReading> {
  const res = await fetch(`${probe}${path}`, { signal: AbortSignal.timeout(5000) })
  if (!res.ok) throw new Error(`runtime probe ${probe} answered ${res.status}`)
  return await res.json() as ProbeReading
}

/** Starts a span: the probe's counters and event-loop histogram restart now. */
export async function resetRuntime (probe: string): Promise<void> {
  await read(probe, '/reset')
}

/** The span since resetRuntime, over `requests` answered in it. */
export async function runtimeSince (probe: string, requests: number): Promise<Runtime> {
  const r = await read(probe, '/read')
  const n = Math.max(1, requests)
  const pauses = Float64Array.from(r.pausesUs).sort()
  return {
    bytesPerRequest: r.allocatedBytes / n,
    promotedPerRequest: r.promotedBytes / n,
    gcCount: pauses.length,
    scavenges: r.scavenges,
    markCompacts: r.markCompacts,
    gcP99Ms: pauses.length === 0 ? 0 : percentile(pauses, 99) / 1000,
    gcMaxMs: pauses.length === 0 ? 0 : pauses[pauses.length - 1]! / 1000,
    gcUsPerRequest: pauses.reduce((s, v) => s + v, 0) / n,
    loopP99Ms: r.loopP99Ms,
    loopMaxMs: r.loopMaxMs,
    heapUsedMb: r.heapUsedBytes / 2 ** 20
  }
}

const profiled = new Map<string, number>()

/** --profile: a CPU and an allocation profile of the measured run, as <dir>/<label>[-n].{cpuprofile,heapprofile} */
export async function profileDuring<T> (probe: string, dir: string | undefined, label: string, run: () => Promise<T>): Promise<T> {
  if (dir === undefined) return await run()
  const n = (profiled.get(label) ?? 0) + 1
  profiled.set(label, n)
  const to = join(dir, `${label.replace(/[^a-zA-Z0-9-]+/g, '-')}${n === 1 ? '' : `-${n}`}`)
  await read(probe, '/profile/start')
  try {
    return await run()
  } finally {
    await fetch(`${probe}/profile/stop?to=${encodeURIComponent(to)}`, { signal: AbortSignal.timeout(30_000) })
  }
}
