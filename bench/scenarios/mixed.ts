import type { BenchRedis } from '../redis-server.ts'
import { cacheCounters, scrape, total, type CacheCounters } from '../scrape.ts'
import type { Server } from '../servers.ts'
import { assertHealthy, runWrk } from '../wrk.ts'
import { resetRuntime, runtimeSince, type Runtime } from '../runtime.ts'
import { sleep } from '../stats.ts'
import { floorBetween } from '../zipf-floor.ts'
import { cacheReady } from './warm-hit.ts'

export interface MixedWindow {
  rps: number
  p99: number
  validations: number
  hitRatio: number
  queriesPerValidation: number
  /** compulsory misses per validation: what a perfect cache would query */
  floor: number
}

export interface MixedResult {
  windows: MixedWindow[]
  /** the last two windows together */
  steady: MixedWindow
  /** allocation, GC pauses and event-loop delay over the steady windows */
  runtime: Runtime
  /** epoch moves of the restarted instance: 0 when its start caught up from the change log */
  epochMoves: number
}

export interface MixedShape {
  sessions: number
  exponent: number
  windows: number
  windowSeconds: number
  connections: number
  threads: number
  redisDb: number
}

function windowOf (a: CacheCounters, b: CacheCounters, rps: number, p99: number, floor: number): MixedWindow {
  const validations = b.validations - a.validations
  const hits = b.hits - a.hits
  const lookups = hits + (b.misses - a.misses)
  return {
    rps,
    p99,
    validations,
    hitRatio: lookups === 0 ? Number.NaN : hits / lookups,
    queriesPerValidation: validations === 0 ? Number.NaN : (b.findSession - a.findSession) / validations,
    floor
  }
}

// The start has read the watermark: replayed the change log (or moved the
// epoch, which the result reports). Flushing before that would remove it.
async function caughtUp (server: Server): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const s = await scrape(server.base)
    if (total(s, 'session_change_log_replays_total') + total(s, 'session_cache_epoch_moves_total') > 0) return
    await sleep(100)
  }
  throw new Error(`${server.name}: did not catch up on the change log within 30 s of its start`)
}

// From empty caches to steady state: Zipf-chosen tokens over every session,
// in windows, each read from the service's own counters. The instance runs
// with its defaults (L1 on): a restart empties its memory, then its Redis
// database is flushed (in this order: a start on a flushed Redis finds no
// change-log watermark and moves the epoch, voiding every instance's cache).
export async function mixed (server: Server, redis: BenchRedis, shape: MixedShape): Promise<MixedResult> {
  await server.restart()
  await cacheReady(server)
  await caughtUp(server)
  await redis.client.select(shape.redisDb)
  await redis.client.flushdb()
  await redis.client.select(0)
  const start = await cacheCounters(server.base)
  const marks = [start]
  const runs = []
  const from = Math.max(0, shape.windows - 2)
  for (let i = 0; i < shape.windows; i++) {
    if (i === from) await resetRuntime(server.probe)
    const result = await runWrk({
      url: server.url,
      tokens: { mode: 'zipf', n: shape.sessions, exponent: shape.exponent },
      seconds: shape.windowSeconds,
      connections: shape.connections,
      threads: shape.threads
    })
    assertHealthy('mixed', result)
    runs.push(result)
    marks.push(await cacheCounters(server.base))
  }
  const runtime = await runtimeSince(server.probe, runs.slice(from).reduce((s, r) => s + r.requests, 0))
  const seen = (c: CacheCounters) => c.validations - start.validations
  const windows = runs.map((r, i) => windowOf(marks[i]!, marks[i + 1]!, r.rps, r.p99,
    floorBetween(shape.sessions, shape.exponent, seen(marks[i]!), seen(marks[i + 1]!))))
  const tail = runs.slice(from)
  const seconds = tail.reduce((s, r) => s + r.seconds, 0)
  const steady = windowOf(marks[from]!, marks[shape.windows]!,
    tail.reduce((s, r) => s + r.requests, 0) / seconds,
    Math.max(...tail.map(r => r.p99)),
    floorBetween(shape.sessions, shape.exponent, seen(marks[from]!), seen(marks[shape.windows]!)))
  // the process started with this run: its counter covers its catch-up and the run
  const epochMoves = total(await scrape(server.base), 'session_cache_epoch_moves_total')
  return { windows, steady, epochMoves, runtime }
}
