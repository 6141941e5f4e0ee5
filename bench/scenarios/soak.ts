import { scrape, total } from '../scrape.ts'
import type { Server } from '../servers.ts'
import { assertHealthy, runWrk } from '../wrk.ts'
import { startCpuMeter } from '../proc-cpu.ts'
import { resetRuntime, runtimeSince, type Runtime } from '../runtime.ts'
import type { Helpers } from './throughput.ts'

export interface SoakWindow {
  atSeconds: number
  rps: number
  p99: number
  /** mean find_session time as the service saw it in this window, ms */
  queryMs: number
  rssMb: number
  heapMb: number
  /** CPU per request: the service's and Postgres' (independent of others' load, unlike req/s) */
  serviceCpuUs: number
  postgresCpuUs: number
}

export interface SoakResult {
  seconds: number
  compareSeconds: number
  compareWindows: number
  firstRps: number
  lastRps: number
  ratio: number
  windows: SoakWindow[]
  /** allocation, GC pauses and event-loop delay over the whole soak */
  runtime: Runtime
}

export interface SoakShape {
  sessions: number
  seconds: number
  windowSeconds: number
  connections: number
  threads: number
}

// The miss path under steady load for a long time, in back-to-back windows,
// watching throughput, query time and the process' memory: a growing queue
// inside the driver would show as falling throughput and growing heap.
export async function soak (server: Server, helpers: Helpers, shape: SoakShape): Promise<SoakResult> {
  const count = Math.max(2, Math.round(shape.seconds / shape.windowSeconds))
  // "the last minute over the first", or thirds of a shorter soak
  const compare = Math.max(1, Math.min(Math.round(60 / shape.windowSeconds), Math.floor(count / 3)))
  const windows: SoakWindow[] = []
  const load = { url: server.url, tokens: { mode: 'uniform', lo: 1, hi: shape.sessions }, connections: shape.connections, threads: shape.threads } as const
  // unmeasured: reopens the pool that idled since the miss runs, so that its
  // Postgres processes are there to be metered from the first window
  await runWrk({ ...load, seconds: 2 })
  let elapsed = 0
  let requests = 0
  let before = await scrape(server.base)
  await resetRuntime(server.probe)
  for (let i = 0; i < count; i++) {
    const cpu = startCpuMeter({ service: [server.child.proc.pid], postgres: await helpers.postgresPids() })
    const result = await runWrk({ ...load, seconds: shape.windowSeconds })
    const cpuUs = cpu.perRequest(result.requests)
    assertHealthy('soak', result)
    const after = await scrape(server.base)
    const q = { query: 'find_session' }
    const queries = total(after, 'db_query_duration_seconds_count', q) - total(before, 'db_query_duration_seconds_count', q)
    const querySeconds = total(after, 'db_query_duration_seconds_sum', q) - total(before, 'db_query_duration_seconds_sum', q)
    elapsed += result.seconds
    requests += result.requests
    windows.push({
      atSeconds: Math.round(elapsed),
      rps: result.rps,
      p99: result.p99,
      queryMs: queries === 0 ? Number.NaN : (querySeconds / queries) * 1000,
      rssMb: total(after, 'process_resident_memory_bytes') / 2 ** 20,
      heapMb: total(after, 'nodejs_heap_size_used_bytes') / 2 ** 20,
      serviceCpuUs: cpuUs.service ?? Number.NaN,
      postgresCpuUs: cpuUs.postgres ?? Number.NaN
    })
    before = after
  }
  const mean = (ws: SoakWindow[]) => ws.reduce((s, w) => s + w.rps, 0) / ws.length
  const firstRps = mean(windows.slice(0, compare))
  const lastRps = mean(windows.slice(-compare))
  const runtime = await runtimeSince(server.probe, requests)
  return { seconds: elapsed, compareSeconds: compare * shape.windowSeconds, compareWindows: compare, firstRps, lastRps, ratio: lastRps / firstRps, windows, runtime }
}
