import { runFixedRate, type FixedRateResult } from '../fixed-rate-run.ts'
import type { Server } from '../servers.ts'
import { scrape, workBetween, type ServiceWork } from '../service-work.ts'
import { startCpuMeter } from '../proc-cpu.ts'
import type { Helpers } from './throughput.ts'

export interface RateShape {
  rate: number
  seconds: number
  warmupSeconds: number
  connections: number
}

export type AtRate = FixedRateResult & { cpuUs: Record<string, number>, work?: ServiceWork }

export async function atFixedRate (server: Server, hi: number, shape: RateShape, helpers: Helpers): Promise<AtRate> {
  const before = server.service ? await scrape(server.base) : undefined
  const cpu = startCpuMeter({ server: [server.child.proc.pid], redis: [helpers.redisPid], postgres: await helpers.postgresPids() })
  const result = await runFixedRate({ url: server.url, lo: 1, hi, ...shape })
  // the generator's warm-up requests count too: the meter spans the whole run
  const cpuUs = cpu.perRequest(result.completed)
  if (before === undefined) return { ...result, cpuUs }
  return { ...result, cpuUs, work: workBetween(before, await scrape(server.base)) }
}
