import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { faultProxy, type FaultProxy } from './fault-proxy.js'
import { testApp, type TestApp } from './app.js'
import { freshPrefix, inspector, sharedRedisUrl } from './redis.js'
import type { TestDatabase } from './postgres.js'

interface Teardown { teardown(fn: () => unknown): void }

// The service as a reverse proxy meets it in the forward-auth tests: listening
// on loopback behind a fault proxy (to make it unreachable), with its Postgres
// behind another (to cut it), and the proxy configurations of
// deploy/forward-auth/, the very files README.md shows, filled in.

export const PROXY_KEY = `proxy-${randomBytes(16).toString('hex')}`
export const COOKIE = 'sv_session'

export interface ForwardAuthService extends TestApp {
  /** Where the proxy reaches the service. */
  front: FaultProxy
  /** Between the service and Postgres. */
  postgres: FaultProxy
}

export async function forwardAuthService (t: Teardown, db: TestDatabase, env: Record<string, string> = {}): Promise<ForwardAuthService> {
  const postgres = await faultProxy(t, Number(new URL(db.url).port || 5432))
  const url = new URL(db.url)
  url.hostname = '127.0.0.1'
  url.port = String(postgres.port)
  const prefix = freshPrefix()
  const redisUrl = await sharedRedisUrl()
  inspector(t, redisUrl, prefix)
  const service = await testApp(t, {
    databaseUrl: url.toString(),
    redisUrl,
    prefix,
    env: {
      SERVICE_API_KEYS: PROXY_KEY,
      FORWARD_AUTH_COOKIE: COOKIE,
      DATABASE_CONNECT_TIMEOUT_SECONDS: '1',
      DATABASE_QUERY_TIMEOUT_MS: '500',
      ...env
    }
  })
  await service.app.listen({ port: 0, host: '127.0.0.1' })
  const front = await faultProxy(t, (service.app.server.address() as AddressInfo).port)
  return { ...service, front, postgres }
}

/** deploy/forward-auth/<name> with the service, the app and the key filled in. */
export function proxyConfig (name: string, ports: { service: number, app: number }, apiKey = PROXY_KEY): string {
  return readFileSync(new URL(`../../deploy/forward-auth/${name}`, import.meta.url), 'utf8')
    .replaceAll('session-validator.internal:3000', `127.0.0.1:${ports.service}`)
    .replaceAll('app.internal:8080', `127.0.0.1:${ports.app}`)
    .replaceAll('<api-key-for-the-proxy>', apiKey)
}
