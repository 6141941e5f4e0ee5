// What each server holding keys says about itself: its version, whether it
// evicts in a way a cache with tombstones tolerates, and its clock.
import type { Redis } from 'ioredis'
import { parseInfo } from '../redis/redis-health.js'
import { FILL_WINDOW_MS, TOMBSTONE_TTL_MS } from '../sessions/coherence/tombstones.js'
import { POLICIES, RECOMMENDATION, UNKNOWN_POLICY } from './memory-policy.js'
import { fail, pass, warn, type Check, type Status } from './report.js'
import { errorCode } from '../errors.js'
import { within } from './within.js'

const MIN_VERSION = [6, 2] // ACL rules as the line writes them (resetchannels)

// Host minus Redis. A fill must land before its deadline (its read time on our
// clock + FILL_WINDOW_MS) by Redis' clock: a host behind by FILL_WINDOW_MS makes
// every fill late and the cache never fills; half of it is the pass mark. A host
// ahead lets a fill land later, and the tombstone must outlive it: ahead by up
// to TOMBSTONE_TTL_MS - FILL_WINDOW_MS is safe, less a 3 s margin.
const SKEW_BEHIND_MAX_MS = FILL_WINDOW_MS / 2
const SKEW_AHEAD_MAX_MS = TOMBSTONE_TTL_MS - FILL_WINDOW_MS - 3000

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`

export async function serverChecks (servers: Redis[], timeoutMs: number): Promise<Check[]> {
  const infos: Array<Map<string, string>> = []
  try {
    for (const server of servers) infos.push(parseInfo(await within(timeoutMs, server.info())))
  } catch (err) {
    return [fail('redis version', `INFO refused or failed (${errorCode(err)})`)]
  }
  return [versionCheck(infos), memoryCheck(infos), await clockCheck(servers, timeoutMs)]
}

function versionCheck (infos: Array<Map<string, string>>): Check {
  const versions = [...new Set(infos.map(i => i.get('redis_version') ?? '?'))]
  const tooOld = versions.filter(v => {
    const [major = 0, minor = 0] = v.split('.').map(Number)
    return major < MIN_VERSION[0]! || (major === MIN_VERSION[0] && minor < MIN_VERSION[1]!)
  })
  const text = versions.join(', ')
  return tooOld.length === 0
    ? pass('redis version', `${text} (${MIN_VERSION.join('.')} or later is needed; tested on 7.0)`, { versions })
    : fail('redis version', `${text} is too old: ${MIN_VERSION.join('.')} or later is needed`, { versions })
}

// Without maxmemory Redis never evicts: the policy cannot bite yet, and
// neither is more than a recommendation. No policy makes the service wrong
// (memory-policy.ts); a verdict of 'fail' there would fail the check.
function memoryCheck (infos: Array<Map<string, string>>): Check {
  const problems: Array<{ status: Status, text: string }> = []
  const parts: string[] = []
  for (const info of infos) {
    const max = Number(info.get('maxmemory') ?? 0)
    const used = Number(info.get('used_memory') ?? 0)
    const policy = info.get('maxmemory_policy') ?? '?'
    const verdict = POLICIES[policy] ?? UNKNOWN_POLICY
    if (max === 0) problems.push({ status: 'warn', text: 'no maxmemory: Redis grows until its host runs out of memory and it is killed' })
    if (verdict.status !== 'pass') problems.push({ status: max === 0 ? 'warn' : verdict.status, text: `maxmemory-policy ${policy}: ${verdict.why}` })
    parts.push(`maxmemory ${max === 0 ? 'unset' : mib(max)}, policy ${policy}, used ${mib(used)}${max > 0 ? ` (${Math.round(100 * used / max)} %)` : ''}`)
  }
  const detail = [...new Set(parts)].join('; ')
  if (problems.length > 0) {
    const say = problems.some(p => p.status === 'fail') ? fail : warn
    return say('redis memory', `${[...new Set(problems.map(p => p.text))].join('; ')} — ${RECOMMENDATION} (${detail})`)
  }
  const why = new Set(infos.map(i => POLICIES[i.get('maxmemory_policy') ?? '?']!.why))
  return pass('redis memory', `${detail}: ${[...why].join('; ')}`)
}

async function clockCheck (servers: Redis[], timeoutMs: number): Promise<Check> {
  const skews: Array<{ skewMs: number, uncertaintyMs: number }> = []
  try {
    for (const server of servers) {
      let best: { skewMs: number, uncertaintyMs: number } | undefined
      // the sample with the shortest round trip says the most
      for (let i = 0; i < 5; i++) {
        // the wall clock the service reads (Date.now()), to a fraction of a millisecond
        const start = performance.now()
        const sent = performance.timeOrigin + start
        const [seconds, micros] = await within(timeoutMs, server.time()) as unknown as [string, string]
        const rtt = performance.now() - start
        const redisMs = Number(seconds) * 1000 + Number(micros) / 1000
        const sample = { skewMs: sent + rtt / 2 - redisMs, uncertaintyMs: rtt / 2 }
        if (best === undefined || sample.uncertaintyMs < best.uncertaintyMs) best = sample
      }
      skews.push(best!)
    }
  } catch (err) {
    return fail('redis clock', `TIME refused or failed (${errorCode(err)})`)
  }
  const worst = skews.reduce((a, b) => Math.abs(b.skewMs) > Math.abs(a.skewMs) ? b : a)
  const ms = Math.round(worst.skewMs)
  const said = `this host is ${Math.abs(ms)} ms ${ms >= 0 ? 'ahead of' : 'behind'} Redis (±${worst.uncertaintyMs.toFixed(1)} ms)`
  const data = { skewMs: worst.skewMs, uncertaintyMs: worst.uncertaintyMs }
  if (worst.skewMs <= -SKEW_BEHIND_MAX_MS) return fail('redis clock', `${said}: fills would be refused as late (allowed: up to ${SKEW_BEHIND_MAX_MS} ms behind); fix NTP`, data)
  if (worst.skewMs >= SKEW_AHEAD_MAX_MS) return fail('redis clock', `${said}: a fill could outlive the tombstone that should stop it (allowed: up to ${SKEW_AHEAD_MAX_MS / 1000} s ahead); fix NTP`, data)
  return pass('redis clock', `${said}; tombstones tolerate ${SKEW_BEHIND_MAX_MS} ms behind to ${SKEW_AHEAD_MAX_MS / 1000} s ahead`, data)
}
