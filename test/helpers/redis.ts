import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { dockerAvailable } from './docker.ts'
import { freePort, waitFor } from './ports.ts'

interface Teardown { teardown(fn: () => unknown): void }

let shared: Promise<string> | undefined

// Where tests find Redis: TEST_REDIS_URL, else a testcontainers Redis when a
// Docker engine answers, else the local server. Tests on it use a fresh prefix.
export function sharedRedisUrl (): Promise<string> {
  shared ??= (async () => {
    if (process.env.TEST_REDIS_URL !== undefined && process.env.TEST_REDIS_URL !== '') return process.env.TEST_REDIS_URL
    if (await dockerAvailable()) {
      const { GenericContainer } = await import('testcontainers')
      const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start()
      return `redis://${container.getHost()}:${container.getMappedPort(6379)}`
    }
    return 'redis://127.0.0.1:6379'
  })()
  return shared
}

export function freshPrefix (): string {
  return `svtest-${randomBytes(5).toString('hex')}:session:`
}

// Test-side inspection of what the service left in Redis (SCAN is fine here;
// the service itself never scans).
export async function keysUnder (client: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

export function inspector (t: Teardown, url: string, prefix?: string): Redis {
  const client = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  t.teardown(async () => {
    if (prefix !== undefined) {
      const keys = await keysUnder(client, prefix).catch(() => [])
      if (keys.length > 0) await client.del(...keys).catch(() => {})
    }
    client.disconnect()
  })
  return client
}

// A redis-server of the test's own, on a free port, to stop, kill and freeze.
export interface OwnRedis {
  url: string
  port: number
  readonly process: ChildProcess
  start(): Promise<void>
  kill(): Promise<void>
  freeze(): void
  thaw(): void
}

export async function ownRedis (t: Teardown, extraArgs: string[] = []): Promise<OwnRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  let frozen = false
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
  probe.on('error', () => {})

  async function start (): Promise<void> {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' })
    await waitFor('redis-server to answer', async () => {
      // started with --requirepass, it answers too: NOAUTH, asking for it
      let asksForPassword = false
      const p = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      p.on('error', (err: Error) => { asksForPassword ||= /NOAUTH/.test(err.message) })
      try {
        await p.connect()
        await p.ping()
        return true
      } catch {
        return asksForPassword
      } finally {
        p.disconnect()
      }
    })
  }

  async function kill (): Promise<void> {
    const c = child
    // killed by a signal, a child has no exit code; waiting for 'exit' again would hang
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    if (frozen) { c.kill('SIGCONT'); frozen = false }
    const exited = new Promise(resolve => c.once('exit', resolve))
    c.kill('SIGKILL')
    await exited
  }

  // before start(): a server that never answers is stopped too
  t.teardown(async () => {
    probe.disconnect()
    await kill()
  })
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get process () { return child! },
    start,
    kill,
    freeze () { child?.kill('SIGSTOP'); frozen = true },
    thaw () { child?.kill('SIGCONT'); frozen = false }
  }
}
