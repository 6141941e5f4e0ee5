import { assertHealthy, runWrk, type TokenChoice, type WrkResult, type WrkRun } from '../wrk.ts'
import type { Server } from '../servers.ts'
import { scrape, workBetween, type ServiceWork } from '../service-work.ts'
import { startCpuMeter } from '../proc-cpu.ts'
import { profileDuring, resetRuntime, runtimeSince, type Runtime } from '../runtime.ts'

export interface LoadShape {
  seconds: number
  warmupSeconds: number
  connections: number
  threads: number
}

// Closed loop, as fast as the server answers: a short unmeasured run first so
// that JIT and pools are warm, then the measured one.
export type Throughput = WrkResult & {
  /** CPU microseconds per request: the server's, redis-server's, Postgres' */
  cpuUs: Record<string, number>
  work?: ServiceWork
  /** allocation, GC pauses and event-loop delay of the server during the measured run */
  runtime: Runtime
}

export interface Helpers {
  redisPid: number | undefined
  /** Postgres' processes for the bench database, listed after the warm-up opened the pools */
  postgresPids(): Promise<number[]>
  /** --profile: where each measured run's CPU and allocation profiles go */
  profileDir: string | undefined
}

export async function throughput (name: string, server: Server, tokens: TokenChoice, shape: LoadShape, helpers: Helpers,
  request: Pick<WrkRun, 'cookieFile'> = {}): Promise<Throughput> {
  const run = { url: server.url, tokens, connections: shape.connections, threads: shape.threads, ...request }
  await runWrk({ ...run, seconds: shape.warmupSeconds })
  const before = server.service ? await scrape(server.base) : undefined
  const cpu = startCpuMeter({ server: [server.child.proc.pid], redis: [helpers.redisPid], postgres: await helpers.postgresPids() })
  await resetRuntime(server.probe)
  const result = await profileDuring(server.probe, helpers.profileDir, name, () => runWrk({ ...run, seconds: shape.seconds }))
  const cpuUs = cpu.perRequest(result.requests)
  const runtime = await runtimeSince(server.probe, result.requests)
  assertHealthy(name, result)
  if (before === undefined) return { ...result, cpuUs, runtime }
  return { ...result, cpuUs, runtime, work: workBetween(before, await scrape(server.base)) }
}
