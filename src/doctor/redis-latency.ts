// Per-call latency as a validation meets it: PING, a cache read (GET of an
// entry sized like the service's) and a cache write (a script writing the
// entry with its expiry in one step, as the service's fill does), one call at
// a time, against Studio's documented mark of under 5 ms per call. Over the
// mark is a warning; a median past REDIS_TIMEOUT_MS is a failure: most of the
// service's calls would time out, and its breaker would keep the cache off.
import type { RedisClient } from '../redis/redis-client.js'
import { fail, pass, warn, type Check } from './report.js'
import { errorCode } from '../errors.js'
import { within } from './within.js'

const LATENCY_CALLS = 200
const LATENCY_P99_MS = 5

const WRITE = `
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return 1`

// 128 bytes: the size of a real entry, one string (src/sessions/entry-codec.ts)
const ENTRY = Buffer.alloc(128, 0x61)

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
const round = (ms: number) => Math.round(ms * 1000) / 1000

async function sample (calls: number, fn: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < calls; i++) {
    const start = performance.now()
    await fn()
    times.push(performance.now() - start)
  }
  return times.sort((a, b) => a - b)
}

export interface LatencyLimits {
  /** How long a reply may take before the doctor gives up on Redis. */
  waitMs: number
  /** REDIS_TIMEOUT_MS: the service's own budget per call. */
  callTimeoutMs: number
  p99Ms?: number
}

export async function latencyChecks (client: RedisClient, key: string, limits: LatencyLimits): Promise<Check[]> {
  const calls = LATENCY_CALLS
  const mark = Math.min(limits.p99Ms ?? LATENCY_P99_MS, limits.callTimeoutMs)
  // EVALSHA, falling back to EVAL once, as the service's scripts run
  if (!Object.hasOwn(client, 'svDoctorWrite')) client.defineCommand('svDoctorWrite', { numberOfKeys: 1, lua: WRITE })
  const runs: Array<[string, () => Promise<unknown>]> = [
    ['ping', () => client.ping()],
    ['cache write', () => client.svDoctorWrite(key, '10000', ENTRY)],
    ['cache read', () => client.getBuffer(key)]
  ]
  const checks: Check[] = []
  for (const [what, fn] of runs) {
    const name = `redis latency ${what}`
    try {
      // one timer for the whole run (a per-call timer would be measured too):
      // a frozen Redis fails it after at most this long
      const times = await within(Math.max(10_000, limits.waitMs * 10), sample(calls, fn))
      const p50 = round(quantile(times, 0.5))
      const p99 = round(quantile(times, 0.99))
      const detail = `p50 ${p50} ms, p99 ${p99} ms over ${calls} calls (pass: p99 under ${mark} ms)`
      const data = { p50, p99, calls }
      if (p99 < mark) checks.push(pass(name, detail, data))
      else if (p50 < limits.callTimeoutMs) checks.push(warn(name, `${detail}: validations slower than they should be`, data))
      else checks.push(fail(name, `${detail}: most calls would exceed REDIS_TIMEOUT_MS (${limits.callTimeoutMs} ms), and the circuit would keep the cache off`, data))
    } catch (err) {
      checks.push(fail(name, `failed (${errorCode(err)})`))
    }
  }
  return checks
}
