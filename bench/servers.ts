import { fileURLToPath } from 'node:url'
import { startChild, waitUntilServing, type Child } from './children.ts'
import { buildRoot, serverEntry } from './dist.ts'
import { LIFECYCLE_ENV } from './lifecycle.ts'
import { freePort } from '../src/free-port.ts'

const PROBE = fileURLToPath(new URL('./runtime-probe.ts', import.meta.url))

export interface Server {
  name: string
  base: string
  url: string
  /** the running process; restart() replaces it */
  child: Child
  /** the real service, with its /metrics */
  service: boolean
  /** answers GET /metrics with at least the event-loop delay (the service, the ceiling) */
  metrics: boolean
  /** the runtime probe's address (bench/runtime-probe.ts): allocation, GC pauses, event-loop delay */
  probe: string
  /** stops the process and starts it again on the same port, with the same environment */
  restart(): Promise<void>
}

export interface ServerSet {
  ceiling: Server
  naive: Server
  /** the service with L1 off, holding the hit set in Redis (L2) */
  hit: Server
  /** the service with L1 on, the hit set in its memory */
  local: Server
  /** as local, with issue 15's idle timeout and sliding expiry on, over sessions of its own */
  lifecycle: Server
  /** the service with REDIS_URL unset and L1 off: every validation from Postgres */
  miss: Server
  /** the service with its defaults, its cache on a Redis database of its own, restarted and flushed per round */
  mixed: Server
  /** express-session + connect-redis, its sessions in a Redis database of its own */
  express: Server
  all: Server[]
}

export interface ServerPlan {
  databaseUrl: string
  redisUrl: (db: number) => string
  /** node options every server runs with (--node-flags) */
  nodeFlags: string[]
  /** RATE_LIMIT_MAX out of reach (on, measured) rather than the default 0 (off) */
  requestLimit: boolean
  hitSet: number
  sessionsPerUser: number
  expressSecret: string
}

// Redis databases: the hit set's fleet shares 0 (as one deployment would);
// the mixed instance's cache and express-session's sessions have their own.
export const REDIS_DB = { fleet: 0, mixed: 1, express: 3 } as const

const PATH = '/sessions/validate'
const PROBE_BODY = '{"token":"tok-1"}'

interface Spec {
  name: string
  script: string
  env: Record<string, string>
  ready: 'readyz' | 'route'
  service: boolean
  metrics: boolean
  readyWithinMs?: number
}

async function start (spec: Spec, plan: ServerPlan): Promise<Server> {
  const port = await freePort()
  const probePort = await freePort()
  const base = `http://127.0.0.1:${port}`
  const launch = async () => {
    // identical process settings for every server: same node, same flags
    const child = startChild(spec.name, process.execPath, [...plan.nodeFlags, '--import', PROBE, spec.script], {
      ...spec.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', BENCH_BUILD: buildRoot(), BENCH_PROBE_PORT: String(probePort)
    })
    await waitUntilServing(child, spec.ready === 'readyz'
      ? { url: `${base}/readyz` }
      : { url: `${base}${PATH}`, method: 'POST', body: PROBE_BODY }, spec.readyWithinMs)
    return child
  }
  const server: Server = {
    name: spec.name,
    base,
    url: `${base}${PATH}`,
    child: await launch(),
    service: spec.service,
    metrics: spec.metrics,
    probe: `http://127.0.0.1:${probePort}`,
    async restart () {
      await server.child.stop()
      server.child = await launch()
    }
  }
  return server
}

const local = (file: string) => fileURLToPath(new URL(file, import.meta.url))

// The service's own defaults (request limit off; failed-lookup budgets on,
// which every seeded token passes), unless --rate-limit turns the request
// limit on: one load generator is one caller, so it is set out of reach.
function serviceBase (plan: ServerPlan): Record<string, string> {
  return { DATABASE_URL: plan.databaseUrl, ...(plan.requestLimit ? { RATE_LIMIT_MAX: '10000000' } : {}) }
}

// An hour's TTL keeps the hit set cached across every round; it changes no
// code path (a hit reads the entry either way).
function fleetEnv (plan: ServerPlan): Record<string, string> {
  return { ...serviceBase(plan), REDIS_URL: plan.redisUrl(REDIS_DB.fleet), SESSION_CACHE_TTL_SECONDS: '3600' }
}

// The service's defaults hold 100,000 sessions of the seeded shape in memory
// (about 650 bytes each, against LOCAL_CACHE_MAX_BYTES' 64 MiB); a larger
// hit set gets room in proportion. Warming checks that nothing was evicted.
const DEFAULT_ENTRIES = 100_000
const L1_BYTES_PER_SESSION = 1024

/** L1 on, sized and timed to hold the whole hit set for the run. */
export function l1HitEnv (plan: ServerPlan): Record<string, string> {
  return {
    ...fleetEnv(plan),
    LOCAL_CACHE_TTL_SECONDS: '3600',
    ...(plan.hitSet > DEFAULT_ENTRIES
      ? { LOCAL_CACHE_MAX_ENTRIES: String(plan.hitSet), LOCAL_CACHE_MAX_BYTES: String(plan.hitSet * L1_BYTES_PER_SESSION) }
      : {})
  }
}

/** An instance of the service on the hit set's database and Redis (deploy, revoke). */
export async function startService (name: string, env: Record<string, string>, plan: ServerPlan): Promise<Server> {
  return await start({ name, script: serverEntry(), env, ready: 'readyz', service: true, metrics: true }, plan)
}

/** A service instance with its defaults (L1 on) in the hit set's fleet. */
export function fleetDefaultsEnv (plan: ServerPlan): Record<string, string> {
  return { ...serviceBase(plan), REDIS_URL: plan.redisUrl(REDIS_DB.fleet) }
}

export async function startServers (plan: ServerPlan): Promise<ServerSet> {
  const base = serviceBase(plan)
  const ceiling = await start({ name: 'ceiling', script: local('./servers/ceiling.ts'), env: {}, ready: 'route', service: false, metrics: true }, plan)
  const naive = await start({ name: 'naive', script: local('./servers/naive.ts'), env: base, ready: 'route', service: false, metrics: false }, plan)
  const hit = await startService('service-hit', { ...fleetEnv(plan), LOCAL_CACHE_MAX_ENTRIES: '0' }, plan)
  // the cookie is read only by GET /forward-auth (the nginx scenario)
  const l1 = await startService('service-local', { ...l1HitEnv(plan), FORWARD_AUTH_COOKIE: 'sv_session' }, plan)
  const lifecycle = await startService('service-lifecycle', { ...l1HitEnv(plan), ...LIFECYCLE_ENV }, plan)
  const miss = await startService('service-miss', { ...base, LOCAL_CACHE_MAX_ENTRIES: '0' }, plan)
  const mixed = await startService('service-mixed', { ...base, REDIS_URL: plan.redisUrl(REDIS_DB.mixed) }, plan)
  const express = await start({
    name: 'express-session',
    script: local('./servers/express-session.ts'),
    env: {
      REDIS_URL: plan.redisUrl(REDIS_DB.express),
      EXPRESS_SESSION_SECRET: plan.expressSecret,
      EXPRESS_SESSIONS: String(plan.hitSet),
      EXPRESS_SESSIONS_PER_USER: String(plan.sessionsPerUser)
    },
    ready: 'readyz',
    service: false,
    metrics: false,
    // it seeds its sessions before it listens
    readyWithinMs: 120_000
  }, plan)
  return { ceiling, naive, hit, local: l1, lifecycle, miss, mixed, express, all: [ceiling, naive, hit, l1, lifecycle, miss, mixed, express] }
}
