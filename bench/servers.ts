import { fileURLToPath } from 'node:url'
import { startChild, waitUntilServing, type Child } from './children.ts'
import { buildRoot, serverEntry } from './dist.ts'
import { freePort } from '../src/free-port.ts'

export interface Server {
  name: string
  base: string
  url: string
  child: Child
  /** the real service, with /metrics */
  service: boolean
}

export interface ServerSet {
  ceiling: Server
  naive: Server
  /** the service with its cache, holding the hit set */
  hit: Server
  /** the service with REDIS_URL unset: every validation from Postgres */
  miss: Server
  /** the service with its cache on a Redis database of its own, flushed per round */
  mixed: Server
  all: Server[]
}

export interface ServerPlan {
  databaseUrl: string
  redisUrl: (db: number) => string
  profileDir: string | undefined
  rateLimit: boolean
}

const PATH = '/sessions/validate'
const PROBE_BODY = '{"token":"tok-1"}'

async function start (name: string, script: string, env: Record<string, string>, plan: ServerPlan, ready: 'readyz' | 'route'): Promise<Server> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  // identical process settings for every server: same node, same flags
  const flags = plan.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', plan.profileDir, '--cpu-prof-name', `${name}.cpuprofile`]
  const child = startChild(name, process.execPath, [...flags, script], {
    ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', BENCH_BUILD: buildRoot()
  })
  await waitUntilServing(child, ready === 'readyz'
    ? { url: `${base}/readyz` }
    : { url: `${base}${PATH}`, method: 'POST', body: PROBE_BODY })
  return { name, base, url: `${base}${PATH}`, child, service: ready === 'readyz' }
}

const local = (file: string) => fileURLToPath(new URL(file, import.meta.url))

export async function startServers (plan: ServerPlan): Promise<ServerSet> {
  // One load generator is one caller: the per-caller limits are set as high as
  // the service allows, so the limiter still runs (its cost is measured) but
  // never answers 429; or 0, which turns it off.
  const limit = plan.rateLimit ? '10000000' : '0'
  const db = { DATABASE_URL: plan.databaseUrl, RATE_LIMIT_MAX: limit, RATE_LIMIT_FAILED_MAX: limit }
  const ceiling = await start('ceiling', local('./servers/ceiling.ts'), {}, plan, 'route')
  const naive = await start('naive', local('./servers/naive.ts'), db, plan, 'route')
  // an hour's TTL keeps the hit set cached across every round; it changes no
  // code path (a hit reads the entry either way)
  // the cookie is read only by GET /forward-auth (the nginx scenario)
  const hit = await start('service-hit', serverEntry(), { ...db, REDIS_URL: plan.redisUrl(0), SESSION_CACHE_TTL_SECONDS: '3600', FORWARD_AUTH_COOKIE: 'sv_session' }, plan, 'readyz')
  const miss = await start('service-miss', serverEntry(), db, plan, 'readyz')
  const mixed = await start('service-mixed', serverEntry(), { ...db, REDIS_URL: plan.redisUrl(1) }, plan, 'readyz')
  return { ceiling, naive, hit, miss, mixed, all: [ceiling, naive, hit, miss, mixed] }
}
