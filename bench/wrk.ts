import { fileURLToPath } from 'node:url'
import { startChild } from './children.ts'
import { sleep } from './stats.ts'

const SCRIPT = fileURLToPath(new URL('./lua/validate.lua', import.meta.url))

export type TokenChoice =
  | { mode: 'uniform', lo: number, hi: number }
  | { mode: 'zipf', n: number, exponent: number }
  | { mode: 'sequential', lo: number, hi: number }

export interface WrkResult {
  requests: number
  seconds: number
  rps: number
  /** milliseconds */
  p50: number
  p99: number
  p999: number
  max: number
  /** sequential mode: the next token number it would have sent */
  next: number
  errors: { connect: number, read: number, write: number, status: number, timeout: number }
}

export interface WrkRun {
  url: string
  tokens: TokenChoice
  seconds: number
  connections: number
  threads: number
  /** GET with the token in the sv_session cookie (forward auth), not a POSTed body */
  cookie?: boolean
  /** GET with line n of this file as the Cookie header for token n (express-session's signed cookies) */
  cookieFile?: string
}

function scriptArgs (run: WrkRun): string[] {
  const { tokens } = run
  const args = tokens.mode === 'zipf' ? ['zipf', String(tokens.n), String(tokens.exponent)] : [tokens.mode, String(tokens.lo), String(tokens.hi)]
  if (run.cookieFile !== undefined) return [...args, 'file', run.cookieFile]
  return run.cookie === true ? [...args, 'cookie'] : args
}

// wrk, not autocannon: one C thread driving epoll leaves the service far more
// of the two cores than a Node load generator does.
export async function runWrk (run: WrkRun): Promise<WrkResult> {
  const args = [
    `-t${run.threads}`, `-c${run.connections}`, `-d${run.seconds}s`, '--timeout', '5s',
    '-s', SCRIPT, run.url, '--', ...scriptArgs(run)
  ]
  const child = startChild('wrk', 'wrk', args)
  // wrk ends itself after -d; this bound only catches a hung wrk
  const code = await Promise.race([child.exited, sleep((run.seconds + 30) * 1000).then(() => 'timeout' as const)])
  if (code === 'timeout') {
    await child.stop()
    throw new Error(`wrk did not finish within ${run.seconds + 30} s`)
  }
  const line = child.output().split('\n').find(l => l.startsWith('BENCH_JSON '))
  if (code !== 0 || line === undefined) throw new Error(`wrk failed (exit ${code}):\n${child.output()}`)
  const raw = JSON.parse(line.slice('BENCH_JSON '.length)) as {
    requests: number, durationUs: number, p50: number, p99: number, p999: number, max: number, next: number, errors: WrkResult['errors']
  }
  const seconds = raw.durationUs / 1e6
  return {
    requests: raw.requests,
    seconds,
    rps: raw.requests / seconds,
    p50: raw.p50 / 1000,
    p99: raw.p99 / 1000,
    p999: raw.p999 / 1000,
    max: raw.max / 1000,
    next: raw.next,
    errors: raw.errors
  }
}

// A run whose answers were mostly errors measured the error path, not ours.
export function assertHealthy (name: string, result: WrkResult): void {
  const e = result.errors
  const failed = e.connect + e.read + e.write + e.status + e.timeout
  if (result.requests === 0 || failed > result.requests * 0.01) {
    throw new Error(`${name}: ${failed} of ${result.requests} requests failed (${JSON.stringify(e)}); the numbers would be meaningless`)
  }
}
