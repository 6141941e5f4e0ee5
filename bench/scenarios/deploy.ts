// A deploy as the fleet sees it: hit traffic on a stable instance while
// another instance on the same database and Redis restarts every N seconds,
// taking traffic from when it is ready until it stops. The shared cache must
// stay warm through it: the stable instance (L1 off, so every answer asks
// Redis) keeps its hits, and the restarting one (L1 on, memory empty at each
// start) answers its first requests from Redis, not from Postgres.
import { addAnswers, cacheAnswers, NO_ANSWERS, scrape, total, type CacheAnswers, type Samples } from '../scrape.ts'
import type { Server } from '../servers.ts'
import type { Range } from '../tokens.ts'
import { assertHealthy, runWrk, type WrkResult } from '../wrk.ts'

export interface DeployShape {
  seconds: number
  restartEverySeconds: number
  connections: number
  threads: number
}

export interface Lifetime {
  /** from the restart until /readyz answered, ms */
  readyMs: number
  /** the first FIRST_SECONDS of traffic after it was ready */
  first: CacheAnswers
  /** the whole lifetime, first seconds included */
  all: CacheAnswers
  epochMoves: number
  replays: number
}

export interface DeployResult {
  seconds: number
  restartEverySeconds: number
  stable: { name: string, answers: CacheAnswers, rps: number, p99: number, epochMoves: number, epochInvalidations: number }
  restarting: { name: string, lifetimes: Lifetime[], answers: CacheAnswers, first: CacheAnswers, epochMoves: number, replays: number }
  /** an instance with L1 on that takes no traffic meanwhile: its memory should outlive its peer's restarts */
  bystander: { name: string, entriesBefore: number, entriesAfter: number, leaseLosses: number, epochInvalidations: number }
}

export const FIRST_SECONDS = 2

const moves = (s: Samples) => total(s, 'session_cache_epoch_moves_total')
const epochInvalidations = (s: Samples) => total(s, 'session_cache_invalidations_total', { reason: 'epoch' })

async function lifetimeOf (server: Server, tokens: Range, until: number, shape: DeployShape): Promise<Omit<Lifetime, 'readyMs'>> {
  const load = { url: server.url, tokens: { mode: 'uniform', ...tokens } as const, connections: Math.max(1, shape.connections >> 1), threads: shape.threads }
  const first = await runWrk({ ...load, seconds: FIRST_SECONDS })
  assertHealthy(`${server.name} (first seconds)`, first)
  const atFirst = await scrape(server.base)
  const left = Math.round((until - performance.now()) / 1000)
  if (left >= 1) assertHealthy(server.name, await runWrk({ ...load, seconds: left }))
  // its counters start at zero with the process: the last scrape is the lifetime
  const end = await scrape(server.base)
  return { first: cacheAnswers(undefined, atFirst), all: cacheAnswers(undefined, end), epochMoves: moves(end), replays: total(end, 'session_change_log_replays_total') }
}

export async function deploy (stable: Server, restarting: Server, bystander: Server, tokens: Range, shape: DeployShape): Promise<DeployResult> {
  const cycles = Math.max(1, Math.floor(shape.seconds / shape.restartEverySeconds))
  const period = shape.restartEverySeconds * 1000
  const [stableBefore, bystanderBefore] = [await scrape(stable.base), await scrape(bystander.base)]
  const start = performance.now()
  const stableRun: Promise<WrkResult> = runWrk({
    url: stable.url, tokens: { mode: 'uniform', ...tokens }, seconds: cycles * shape.restartEverySeconds, connections: Math.max(1, shape.connections >> 1), threads: shape.threads
  })
  const lifetimes: Lifetime[] = []
  try {
    for (let i = 0; i < cycles; i++) {
      const cycleStart = performance.now()
      // the first start was the bench's: this one counts from a stopped process
      await restarting.restart()
      const readyMs = performance.now() - cycleStart
      lifetimes.push({ readyMs, ...await lifetimeOf(restarting, tokens, start + (i + 1) * period, shape) })
      await restarting.child.stop()
    }
  } finally {
    await stableRun.catch(() => undefined)
  }
  const stableResult = await stableRun
  assertHealthy(stable.name, stableResult)
  const [stableAfter, bystanderAfter] = [await scrape(stable.base), await scrape(bystander.base)]
  const entries = (s: Samples) => total(s, 'session_local_cache_entries')
  return {
    seconds: (performance.now() - start) / 1000,
    restartEverySeconds: shape.restartEverySeconds,
    stable: {
      name: stable.name,
      answers: cacheAnswers(stableBefore, stableAfter),
      rps: stableResult.rps,
      p99: stableResult.p99,
      epochMoves: moves(stableAfter) - moves(stableBefore),
      epochInvalidations: epochInvalidations(stableAfter) - epochInvalidations(stableBefore)
    },
    restarting: {
      name: restarting.name,
      lifetimes,
      answers: lifetimes.reduce((sum, l) => addAnswers(sum, l.all), NO_ANSWERS),
      first: lifetimes.reduce((sum, l) => addAnswers(sum, l.first), NO_ANSWERS),
      epochMoves: lifetimes.reduce((sum, l) => sum + l.epochMoves, 0),
      replays: lifetimes.reduce((sum, l) => sum + l.replays, 0)
    },
    bystander: {
      name: bystander.name,
      entriesBefore: entries(bystanderBefore),
      entriesAfter: entries(bystanderAfter),
      leaseLosses: total(bystanderAfter, 'session_local_cache_lease_losses_total') - total(bystanderBefore, 'session_local_cache_lease_losses_total'),
      epochInvalidations: epochInvalidations(bystanderAfter) - epochInvalidations(bystanderBefore)
    }
  }
}
