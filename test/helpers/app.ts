import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildServer, loggerOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { waitFor } from './ports.js'

interface Teardown { teardown(fn: () => unknown): void }

export interface TestApp {
  app: FastifyInstance
  /** Every log line the app wrote, for leak checks. */
  logs: string[]
}

export interface TestAppOptions {
  databaseUrl: string
  redisUrl?: string | undefined
  prefix?: string
  env?: Record<string, string>
  beforeFill?: (digest: string) => Promise<void>
  waitForCache?: boolean
}

export async function testApp (t: Teardown, opts: TestAppOptions): Promise<TestApp> {
  const env: Record<string, string> = {
    DATABASE_URL: opts.databaseUrl,
    LOG_LEVEL: 'debug',
    REDIS_TIMEOUT_MS: '150',
    SESSION_CACHE_PREFIX: opts.prefix ?? 'session:',
    ...(opts.redisUrl !== undefined ? { REDIS_URL: opts.redisUrl } : {}),
    ...opts.env
  }
  const config = loadConfig(env)
  const logs: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      logs.push(chunk.toString())
      done()
    }
  })
  const app = await buildServer(
    { config, databaseUrl: opts.databaseUrl, ...(opts.beforeFill !== undefined ? { beforeFill: opts.beforeFill } : {}) },
    { logger: { ...(loggerOptions(config) as object), stream } }
  )
  await app.ready()
  t.teardown(() => app.close())
  // Ready to answer from the caches: the epoch is known, Redis is connected
  // and caught up, and the memory cache holds its lease.
  if (opts.waitForCache !== false) {
    await waitFor('the cache epoch', () => app.sessions.epoch !== undefined)
    if (app.cacheClient !== undefined) {
      await waitFor('redis', () => app.cacheClient?.client.status === 'ready')
      await waitFor('the shared cache to catch up', () => app.coherence.sharedReadable())
    }
    if (config.localCacheMaxEntries > 0) await waitFor('the lease', () => app.coherence.localServable())
  }
  return { app, logs }
}

export async function validate (app: FastifyInstance, token: string) {
  return await app.inject({ method: 'POST', url: '/sessions/validate', payload: { token } })
}
