import { fileURLToPath } from 'node:url'
import { startChild } from './children.ts'
import { sleep } from './stats.ts'

const GENERATOR = fileURLToPath(new URL('./fixed-rate.ts', import.meta.url))

export interface FixedRateResult {
  rate: number
  sent: number
  completed: number
  errors: number
  lost: number
  measured: number
  achievedRps: number
  /** how far behind schedule the generator itself fell, ms */
  maxLateMs: number
  p50: number
  p99: number
  p999: number
  max: number
}

export interface FixedRateRun {
  url: string
  rate: number
  seconds: number
  warmupSeconds: number
  lo: number
  hi: number
  connections: number
}

// The generator runs in its own process so that its event loop is nobody
// else's; it shares the cores with the server like wrk does.
export async function runFixedRate (run: FixedRateRun): Promise<FixedRateResult> {
  const child = startChild('fixed-rate', process.execPath, [
    GENERATOR, '--url', run.url, '--rate', String(run.rate), '--seconds', String(run.seconds),
    '--warmup', String(run.warmupSeconds), '--lo', String(run.lo), '--hi', String(run.hi),
    '--connections', String(run.connections)
  ])
  const limit = (run.seconds + run.warmupSeconds + 30) * 1000
  const code = await Promise.race([child.exited, sleep(limit).then(() => 'timeout' as const)])
  if (code === 'timeout') {
    await child.stop()
    throw new Error('the fixed-rate generator did not finish in time')
  }
  const line = child.output().split('\n').find(l => l.startsWith('BENCH_JSON '))
  if (code !== 0 || line === undefined) throw new Error(`fixed-rate generator failed (exit ${code}):\n${child.output()}`)
  const result = JSON.parse(line.slice('BENCH_JSON '.length)) as FixedRateResult
  if (result.errors + result.lost > result.sent * 0.01) {
    throw new Error(`fixed rate: ${result.errors} errors and ${result.lost} lost of ${result.sent}; the numbers would be meaningless`)
  }
  return result
}
