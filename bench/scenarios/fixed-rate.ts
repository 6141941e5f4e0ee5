import { runFixedRate, type FixedRateResult } from '../fixed-rate-run.ts'
import { eventLoopDelay, type EventLoopDelay } from '../scrape.ts'
import type { Server } from '../servers.ts'
import { scrape, workBetween, type ServiceWork } from '../service-work.ts'
import { startCpuMeter } from '../proc-cpu.ts'
import { profileDuring, resetRuntime, runtimeSince, type Runtime } from '../runtime.ts'
import type { Helpers } from './throughput.ts'

export interface RateShape {
  rate: number
  seconds: number
  warmupSeconds: number
  connections: number
}

export type AtRate = FixedRateResult & {
  cpuUs: Record<string, number>
  work?: ServiceWork
  /** the server's event-loop delay over the run (warm-up included), from its /metrics */
  eventLoop?: EventLoopDelay
  /** allocation, GC pauses and event-loop delay (1 ms resolution) over the run, warm-up included */
  runtime: Runtime
}

export async function atFixedRate (server: Server, lo: number, hi: number, shape: RateShape, helpers: Helpers): Promise<AtRate> {
  // this scrape also resets the server's event-loop histogram
  const before = server.metrics ? await scrape(server.base) : undefined
  const cpu = startCpuMeter({ server: [server.child.proc.pid], redis: [helpers.redisPid], postgres: await helpers.postgresPids() })
  await resetRuntime(server.probe)
  const result = await profileDuring(server.probe, helpers.profileDir, `${server.name}-at-rate`, () => runFixedRate({ url: server.url, lo, hi, ...shape }))
  // the generator's warm-up requests count too: the meter spans the whole run
  const cpuUs = cpu.perRequest(result.completed)
  const runtime = await runtimeSince(server.probe, result.completed)
  if (before === undefined) return { ...result, cpuUs, runtime }
  const after = await scrape(server.base)
  return { ...result, cpuUs, runtime, eventLoop: eventLoopDelay(after), ...(server.service ? { work: workBetween(before, after) } : {}) }
}
