// What the soak samples while it runs: each instance's memory and epoch moves
// from its /metrics, and the connections Postgres and Redis hold for each
// instance (told apart by the ports of that instance's own proxies).
import type postgres from 'postgres'
import type { Redis } from 'ioredis'
import { byLabel, scrape, total } from '../bench/scrape.ts'
import type { Instance } from './instance.ts'
import { DATABASE, OWN_NAME } from './stack.ts'
import type { Timeline } from './timeline.ts'

export interface MemorySample {
  at: number
  instance: number
  generation: number
  rss: number
  heap: number
}

export interface PostgresConnections {
  /** the pool (application_name session-validator) */
  pool: number
  listener: number
  coherence: number
  /** still starting (no application_name yet) or unknown */
  other: number
}

export interface Connections {
  at: number
  postgres: PostgresConnections[]
  redis: number[]
  /** service connections no live proxy connection accounts for */
  unattributed: { postgres: number, redis: number }
}

export async function countConnections (sql: postgres.Sql, redis: Redis, instances: Instance[], at: number): Promise<Connections> {
  const rows = await sql<Array<{ application_name: string, client_port: number | null }>>`
    SELECT application_name, client_port FROM pg_stat_activity
     WHERE datname = ${DATABASE} AND backend_type = 'client backend' AND application_name <> ${OWN_NAME}`
  const pgPorts = instances.map(i => i.postgres.upstreamPorts())
  const out: Connections = {
    at,
    postgres: instances.map(() => ({ pool: 0, listener: 0, coherence: 0, other: 0 })),
    redis: instances.map(() => 0),
    unattributed: { postgres: 0, redis: 0 }
  }
  for (const row of rows) {
    const i = pgPorts.findIndex(ports => row.client_port !== null && ports.has(row.client_port))
    if (i === -1) { out.unattributed.postgres++; continue }
    const c = out.postgres[i]!
    if (row.application_name === 'session-validator') c.pool++
    else if (row.application_name.startsWith('session-validator-listener')) c.listener++
    else if (row.application_name === 'session-validator-coherence') c.coherence++
    else c.other++
  }
  const redisPorts = instances.map(i => i.redis.upstreamPorts())
  const list = await redis.client('LIST') as string
  for (const line of list.split('\n')) {
    const port = /\baddr=[^ ]*:(\d+)\b/.exec(line)?.[1]
    const name = /\bname=(\S*)/.exec(line)?.[1]
    if (port === undefined || name === OWN_NAME) continue
    const i = redisPorts.findIndex(ports => ports.has(Number(port)))
    if (i === -1) out.unattributed.redis++
    else out.redis[i]!++
  }
  return out
}

export interface EpochMoves { at: number, cause: string, count: number }

export interface Watch {
  memory: MemorySample[]
  connections: Connections[]
  /** epoch moves seen in the instances' counters, by cause, when first seen */
  epochMoves: EpochMoves[]
  stop(): Promise<void>
}

export interface WatchOptions {
  instances: Instance[]
  sql: postgres.Sql
  redis: Redis
  timeline: Timeline
  memoryEveryMs: number
  connectionsEveryMs: number
  now: () => number
}

export function watch (o: WatchOptions): Watch {
  const w: Watch = { memory: [], connections: [], epochMoves: [], stop: async () => {} }
  const moves = new Map<string, number>()
  const state = { running: true }

  async function sampleMemory (): Promise<void> {
    await Promise.all(o.instances.map(async (inst, instance) => {
      if (!inst.routable) return
      const generation = inst.generation
      const samples = await scrape(`http://127.0.0.1:${inst.port}`).catch(() => undefined)
      if (samples === undefined || generation !== inst.generation) return
      const at = o.now()
      w.memory.push({ at, instance, generation, rss: total(samples, 'process_resident_memory_bytes'), heap: total(samples, 'nodejs_heap_size_used_bytes') })
      // an epoch move voids every entry cached before it
      for (const [cause, count] of Object.entries(byLabel(samples, 'session_cache_epoch_moves_total', 'cause'))) {
        const key = `${instance}/${generation}/${cause}`
        const seen = moves.get(key) ?? 0
        if (count > seen) {
          w.epochMoves.push({ at, cause, count: count - seen })
          o.timeline.voidedAt = at
        }
        moves.set(key, count)
      }
    }))
  }

  async function loop (everyMs: number, fn: () => Promise<void>): Promise<void> {
    while (state.running) {
      await fn().catch(() => {})
      await new Promise(resolve => setTimeout(resolve, everyMs))
    }
  }

  const loops = [
    loop(o.memoryEveryMs, sampleMemory),
    loop(o.connectionsEveryMs, async () => { w.connections.push(await countConnections(o.sql, o.redis, o.instances, o.now())) })
  ]
  w.stop = async () => {
    state.running = false
    await Promise.all(loops)
  }
  return w
}
