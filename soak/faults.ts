// Each fault, done for real to the real servers: what it does, how long, and
// how it is undone. `run` returns once the dependency is back (or the last
// instance restarted serves again).
import type { FaultKind } from './fault-kinds.ts'
import type { Step } from './schedule.ts'
import type { Stack } from './stack.ts'
import type { Timeline } from './timeline.ts'
import type { Traffic } from './traffic.ts'

export interface FaultContext {
  stack: Stack
  traffic: Traffic
  timeline: Timeline
  restartEveryMs: number
  now: () => number
  log: (line: string) => void
}

export interface Fault {
  title(step: Step, ctx: FaultContext): string
  /** the instances (by index) it may cut off from Postgres */
  postgres(step: Step, ctx: FaultContext): number[]
  run(step: Step, ctx: FaultContext): Promise<void>
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
const all = (_: Step, ctx: FaultContext) => ctx.stack.instances.map((_, i) => i)
const none = () => []
const secs = (ms: number) => `${Math.round(ms / 1000)} s`

// Redis at its maxmemory: the doctor's recommended policy, a limit just above
// what is used, and filler keys (not the service's) written until the hold
// ends, so that Redis keeps evicting, the service's keys among others.
const EVICTION_POLICY = 'allkeys-lru'
const FILLER_PREFIX = 'soak-filler:'
const FILLER_BYTES = 4096
// the flood of unknown tokens, a second, on top of the traffic
const FLOOD_RATE = 200
// resets while the fault lasts: established connections now and then, and
// new ones during their start-up or first queries
const RESET_EVERY_MS = 1500
const RESET_NEW_CHANCE = 0.5
const RESET_NEW_MAX_CHUNK = 3

async function fillRedis (ctx: FaultContext, until: number): Promise<number> {
  const client = ctx.stack.redisClient
  const value = 'x'.repeat(FILLER_BYTES)
  let n = 0
  while (ctx.now() < until) {
    const batch = client.pipeline()
    for (let i = 0; i < 50; i++) batch.set(`${FILLER_PREFIX}${n++}`, value)
    await batch.exec().catch(() => {})
    await sleep(20)
  }
  return n
}

async function dropFillers (ctx: FaultContext): Promise<void> {
  const client = ctx.stack.redisClient
  let cursor = '0'
  do {
    const [nextCursor, keys] = await client.scan(cursor, 'MATCH', `${FILLER_PREFIX}*`, 'COUNT', 1000)
    cursor = nextCursor
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
}

export const FAULTS: Record<FaultKind, Fault> = {
  'rolling-restart': {
    title: (_, ctx) => `rolling restart, one every ${secs(ctx.restartEveryMs)}`,
    postgres: none,
    async run (_, ctx) {
      for (const inst of ctx.stack.instances) {
        const started = ctx.now()
        await inst.stop()
        await inst.start()
        await sleep(Math.max(0, ctx.restartEveryMs - (ctx.now() - started)))
      }
    }
  },
  'instance-kill': {
    title: (step, ctx) => `instance ${ctx.stack.instances[step.target]!.name} killed (SIGKILL), started after ${secs(step.holdMs)}`,
    postgres: none,
    async run (step, ctx) {
      const inst = ctx.stack.instances[step.target]!
      await inst.kill()
      await sleep(step.holdMs)
      await inst.start()
    }
  },
  'redis-kill': {
    title: step => `Redis killed (SIGKILL), restarted empty after ${secs(step.holdMs)}`,
    postgres: none,
    async run (step, ctx) {
      ctx.timeline.voidedAt = ctx.now()
      await ctx.stack.redis.kill()
      await sleep(step.holdMs)
      await ctx.stack.redis.start()
      ctx.timeline.voidedAt = ctx.now()
    }
  },
  'redis-freeze': {
    title: step => `Redis frozen (SIGSTOP) for ${secs(step.holdMs)}`,
    postgres: none,
    async run (step, ctx) {
      ctx.stack.redis.freeze()
      await sleep(step.holdMs)
      ctx.stack.redis.thaw()
    }
  },
  'redis-maxmemory': {
    title: step => `Redis at maxmemory, ${EVICTION_POLICY}, evicting for ${secs(step.holdMs)}`,
    postgres: none,
    async run (step, ctx) {
      const client = ctx.stack.redisClient
      const before = [...await client.config('GET', 'maxmemory') as string[], ...await client.config('GET', 'maxmemory-policy') as string[]]
      const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1] ?? 0)
      await client.config('SET', 'maxmemory-policy', EVICTION_POLICY)
      await client.config('SET', 'maxmemory', String(used + 2 * 1024 * 1024))
      // any entry cached before may be evicted from here on: none counts as cached
      ctx.timeline.voidedAt = ctx.now()
      const written = await fillRedis(ctx, ctx.now() + step.holdMs)
      const evicted = /evicted_keys:(\d+)/.exec(await client.info('stats'))?.[1]
      for (let i = 0; i + 1 < before.length; i += 2) await client.config('SET', before[i]!, before[i + 1]!)
      await dropFillers(ctx)
      ctx.timeline.voidedAt = ctx.timeline.evictedAt = ctx.now()
      ctx.log(`  ${written} filler keys written; evicted_keys ${evicted} so far`)
    }
  },
  'postgres-resets': {
    title: step => `Postgres connections reset (RST) at random for ${secs(step.holdMs)}, new ones too`,
    postgres: all,
    async run (step, ctx) {
      const proxies = ctx.stack.instances.map(i => i.postgres)
      for (const p of proxies) p.resetNew(RESET_NEW_CHANCE, RESET_NEW_MAX_CHUNK)
      const until = ctx.now() + step.holdMs
      let resets = 0
      while (ctx.now() < until) {
        await sleep(Math.random() * 2 * RESET_EVERY_MS)
        resets += proxies[Math.floor(Math.random() * proxies.length)]!.reset(1 + Math.floor(Math.random() * 3))
      }
      for (const p of proxies) p.resetNew(0, 1)
      ctx.log(`  ${resets} established connections reset, new ones at random`)
    }
  },
  'postgres-partition': {
    title: (step, ctx) => `Postgres partitioned from instance ${ctx.stack.instances[step.target]!.name} for ${secs(step.holdMs)}`,
    postgres: step => [step.target],
    async run (step, ctx) {
      const proxy = ctx.stack.instances[step.target]!.postgres
      proxy.hold()
      await sleep(step.holdMs)
      proxy.restore()
    }
  },
  'postgres-restart': {
    title: step => `Postgres stopped (fast) and started after ${secs(step.holdMs)}`,
    postgres: all,
    async run (step, ctx) {
      await ctx.stack.cluster.stop()
      await sleep(step.holdMs)
      await ctx.stack.cluster.start()
    }
  },
  'unknown-flood': {
    title: step => `flood of unknown tokens from one address, ${FLOOD_RATE}/s for ${secs(step.holdMs)}`,
    postgres: none,
    async run (step, ctx) {
      await ctx.traffic.flood(FLOOD_RATE, step.holdMs)
    }
  }
}
