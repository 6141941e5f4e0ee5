// Revoke latency with every instance healthy: sessions held in the memory of
// each of several instances (processes on one database and Redis, L1 on),
// revoked one at a time through the first. A revoke returns only once no
// instance can answer the session from memory, so its round trip includes the
// fan-out: a barrier to every instance and their acknowledgements.
import { Agent, request } from 'node:http'
import { scrape, total, type Samples } from '../scrape.ts'
import type { Server } from '../servers.ts'
import { percentile } from '../stats.ts'
import type { Range } from '../tokens.ts'
import { REVOKE_WARMUP } from '../tokens.ts'
import { cacheReady, leaseHeld } from './warm-hit.ts'
import { resetRuntime, runtimeSince, type Runtime } from '../runtime.ts'

export interface RevokeResult {
  instances: number
  revokes: number
  p50: number
  p99: number
  max: number
  mean: number
  /** fan-outs on the revoking instance by outcome */
  acknowledged: number
  leaseExpired: number
  /** acknowledgements received per revoke (each other instance once, when all are healthy) */
  acksPerRevoke: number
  /** of the round trip, the mean time from the delete's commit until the fan-out settled (session_revoke_wait_seconds), ms */
  fanOutMeanMs: number
  /** second validations that did not come from the instance's memory (the session was not held in L1 before its revoke) */
  notLocalBefore: number
  /** validations answered 200 after the revoke returned (must be 0) */
  validAfter: number
  /** each instance's GC pauses and event-loop delay over the measured revokes (the first is the revoking one) */
  runtimes: Runtime[]
}

interface Answer { status: number, tier: string | undefined }

function post (agent: Agent, server: Server, path: string, body: string): Promise<Answer> {
  const url = new URL(server.base)
  return new Promise((resolve, reject) => {
    const req = request({
      agent,
      host: url.hostname,
      port: url.port,
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    }, res => {
      res.resume()
      res.on('end', () => {
        const tier = res.headers['x-session-cache-tier']
        resolve({ status: res.statusCode ?? 0, tier: typeof tier === 'string' ? tier : undefined })
      })
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error(`${server.name} ${path}: no answer within 10 s`)))
    req.end(body)
  })
}

const fanOut = (s: Samples, outcome: string) => total(s, 'session_revoke_fanout_total', { outcome })

export async function revokeLatency (instances: Server[], tokens: Range): Promise<RevokeResult> {
  const agents = instances.map(() => new Agent({ keepAlive: true, maxSockets: 1 }))
  try {
    for (const server of instances) {
      await cacheReady(server)
      await leaseHeld(server)
    }
    const through = instances[0]!
    const latencies: number[] = []
    let notLocalBefore = 0
    let validAfter = 0
    let before: Samples | undefined
    for (let n = tokens.lo; n <= tokens.hi; n++) {
      if (n === tokens.lo + REVOKE_WARMUP) {
        before = await scrape(through.base)
        for (const server of instances) await resetRuntime(server.probe)
      }
      const body = `{"token":"tok-${n}"}`
      for (let i = 0; i < instances.length; i++) {
        const first = await post(agents[i]!, instances[i]!, '/sessions/validate', body)
        const second = await post(agents[i]!, instances[i]!, '/sessions/validate', body)
        if (first.status !== 200 || second.status !== 200) throw new Error(`revoke: tok-${n} was not valid on ${instances[i]!.name} before its revoke (${first.status}, ${second.status})`)
        if (second.tier !== 'local') notLocalBefore++
      }
      const sent = performance.now()
      const revoked = await post(agents[0]!, through, '/sessions/revoke', body)
      const elapsed = performance.now() - sent
      if (revoked.status !== 200) throw new Error(`revoke: POST /sessions/revoke answered ${revoked.status}`)
      if (before !== undefined) latencies.push(elapsed)
      for (let i = 0; i < instances.length; i++) {
        if ((await post(agents[i]!, instances[i]!, '/sessions/validate', body)).status === 200) validAfter++
      }
    }
    const after = await scrape(through.base)
    const runtimes = []
    for (const server of instances) runtimes.push(await runtimeSince(server.probe, latencies.length))
    const delta = (name: string) => total(after, name) - total(before!, name)
    const sorted = Float64Array.from(latencies).sort()
    const revokes = sorted.length
    return {
      instances: instances.length,
      revokes,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted[revokes - 1] ?? Number.NaN,
      mean: latencies.reduce((s, v) => s + v, 0) / Math.max(1, revokes),
      acknowledged: fanOut(after, 'acknowledged') - fanOut(before!, 'acknowledged'),
      leaseExpired: fanOut(after, 'lease_expired') - fanOut(before!, 'lease_expired'),
      acksPerRevoke: (total(after, 'session_invalidation_acks_received_total') - total(before!, 'session_invalidation_acks_received_total')) / Math.max(1, revokes),
      fanOutMeanMs: (delta('session_revoke_wait_seconds_sum') * 1000) / Math.max(1, delta('session_revoke_wait_seconds_count')),
      notLocalBefore,
      validAfter,
      runtimes
    }
  } finally {
    for (const agent of agents) agent.destroy()
  }
}
