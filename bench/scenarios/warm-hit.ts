import type { BenchRedis } from '../redis-server.ts'
import { breakdown, type MemoryBreakdown } from '../redis-memory.ts'
import { scrape, total } from '../scrape.ts'
import type { Server } from '../servers.ts'
import { sleep } from '../stats.ts'
import type { Range } from '../tokens.ts'
import { runWrk } from '../wrk.ts'

export async function cacheReady (server: Server): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const res = await fetch(`${server.base}/healthz/redis`, { signal: AbortSignal.timeout(5000) })
    const body = await res.json() as { status?: string }
    if (body.status === 'healthy') return
    await sleep(200)
  }
  throw new Error(`${server.name}: the cache did not become healthy within 30 s`)
}

/** Waits until the instance may answer from its own memory (it holds its lease). */
export async function leaseHeld (server: Server): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (total(await scrape(server.base), 'session_local_cache_lease_held') === 1) return
    await sleep(100)
  }
  throw new Error(`${server.name}: no lease within 30 s, so it cannot answer from memory`)
}

// Sends tokens lo..hi at least once each, in short chunks: wrk waits out -d
// even after the script stopped.
async function sendEach (server: Server, lo: number, hi: number, connections: number): Promise<void> {
  let next = lo
  for (let chunk = 0; chunk < 1000; chunk++) {
    const result = await runWrk({ url: server.url, tokens: { mode: 'sequential', lo: next, hi }, seconds: 2, connections, threads: 1 })
    if (result.errors.status + result.errors.connect > 0) throw new Error(`warming the hit set: ${JSON.stringify(result.errors)}`)
    if (result.next > hi) return
    // requests in flight when -d ran out may be lost: resend the last few
    next = Math.max(next + 1, result.next - connections)
  }
  throw new Error(`warming the hit set stalled at token ${next} of ${hi}`)
}

// Validates tokens 1..n once each through the service, so that it fills the
// cache itself (its own encoding is what is measured), and weighs the result.
export async function warmHitSet (server: Server, redis: BenchRedis, n: number, connections: number): Promise<MemoryBreakdown> {
  await cacheReady(server)
  await redis.client.flushdb()
  const before = await redis.usedMemory()
  // a fill can be refused (e.g. before the service knows the cache epoch):
  // a few bounded passes until every session is cached
  let memory: MemoryBreakdown | undefined
  for (let pass = 0; pass < 3; pass++) {
    await sendEach(server, 1, n, connections)
    memory = await breakdown(redis.client, (await redis.usedMemory()) - before)
    if (memory.entryKeys >= n) break
  }
  if (memory === undefined || memory.entryKeys < n) throw new Error(`only ${memory?.entryKeys ?? 0} of ${n} sessions got cached`)
  return memory
}

export interface LocalWarmth {
  entries: number
  bytes: number
  evictions: number
}

// Sends each session of the range through an instance with L1 on, so that it
// holds them in memory (from Redis, or from Postgres filling both); a lease
// lost meanwhile empties memory, hence a few bounded passes.
export async function warmLocal (server: Server, range: Range, connections: number): Promise<LocalWarmth> {
  await cacheReady(server)
  await leaseHeld(server)
  const want = range.hi - range.lo + 1
  let warmth: LocalWarmth | undefined
  for (let pass = 0; pass < 3; pass++) {
    await sendEach(server, range.lo, range.hi, connections)
    const samples = await scrape(server.base)
    warmth = {
      entries: total(samples, 'session_local_cache_entries'),
      bytes: total(samples, 'session_local_cache_bytes'),
      evictions: total(samples, 'session_local_cache_evictions_total')
    }
    if (warmth.entries >= want) return warmth
    await leaseHeld(server)
  }
  throw new Error(`${server.name}: only ${warmth?.entries ?? 0} of ${want} sessions in its memory after three passes (evictions: ${warmth?.evictions ?? 0})`)
}
