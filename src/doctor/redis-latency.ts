// Per-call latency as a validation meets it: PING, a cache read (HGETALL of
// an entry shaped like the service's) and a cache write (a script writing the
// entry with its expiry in one step, as the service's fill does), one call at
// a time, against Studio's documented mark of under 5 ms per call.
import type { RedisClient } from '../redis/guarded-redis.js'
import { fail, pass, type Check } from './report.js'
import { codeOf, within } from './within.js'

const LATENCY_CALLS = 200
const LATENCY_P99_MS = 5

const WRITE = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`

// 13 fields, ~480 bytes: the size of a real entry (README, Scaling).
const ENTRY = [
  'e', '1', 'i', '8d5c6f0e-2c1a-4e49-9a39-0a8d3b1c2e4f', 'u', '3f2b1a09-7e6d-4c5b-8a49-1b2c3d4e5f60',
  'x', '1767225600000', 'c', '1764547200000', 'l', '1764633600000', 'a', '203.0.113.17',
  'g', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Ge', 'g1', 'cko) Chrome/131.0 Safari/537.36',
  'm', 'someone@example.com', 'f', 'Some', 'n', 'One', 'h', 'someone'
]

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

export async function latencyChecks (client: RedisClient, key: string, timeoutMs: number, p99Ms = LATENCY_P99_MS): Promise<Check[]> {
  const calls = LATENCY_CALLS
  const mark = Math.min(p99Ms, timeoutMs)
  // EVALSHA, falling back to EVAL once, as the service's scripts run
  if (!('svDoctorWrite' in client)) client.defineCommand('svDoctorWrite', { numberOfKeys: 1, lua: WRITE })
  const scripted = client as unknown as { svDoctorWrite(key: string, ttlMs: string, ...fields: string[]): Promise<number> }
  const runs: Array<[string, () => Promise<unknown>]> = [
    ['ping', () => client.ping()],
    ['cache write', () => scripted.svDoctorWrite(key, '10000', ...ENTRY)],
    ['cache read', () => client.hgetall(key)]
  ]
  const checks: Check[] = []
  for (const [what, fn] of runs) {
    const name = `redis latency ${what}`
    try {
      // one timer for the whole run (a per-call timer would be measured too):
      // a frozen Redis fails it after at most this long
      const times = await within(Math.max(10_000, timeoutMs * 10), sample(calls, fn))
      const p50 = round(quantile(times, 0.5))
      const p99 = round(quantile(times, 0.99))
      const detail = `p50 ${p50} ms, p99 ${p99} ms over ${calls} calls (pass: p99 under ${mark} ms)`
      checks.push(p99 < mark ? pass(name, detail, { p50, p99, calls }) : fail(name, detail, { p50, p99, calls }))
    } catch (err) {
      checks.push(fail(name, `failed (${codeOf(err)})`))
    }
  }
  return checks
}
