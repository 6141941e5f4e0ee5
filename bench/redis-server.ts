import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { startChild } from './children.ts'
import { onCleanup } from './cleanup.ts'
import { freePort } from '../src/free-port.ts'
import { sleep } from './stats.ts'

export interface BenchRedis {
  url(db: number): string
  client: Redis
  pid: number | undefined
  usedMemory(): Promise<number>
}

// A redis-server of the bench's own, so that its memory counts only our keys
// and flushing it touches nobody else's data. No persistence: nothing to clean.
export async function startRedis (): Promise<BenchRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'sv-bench-redis-'))
  onCleanup('redis dir', () => rmSync(dir, { recursive: true, force: true }))
  const child = startChild('redis-server', 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'
  ])
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  client.on('error', () => {}) // connect() below reports; retries are ours
  onCleanup('redis client', () => client.disconnect())
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await client.connect()
      break
    } catch (err) {
      if (Date.now() > deadline || child.proc.exitCode !== null) throw new Error(`redis-server did not start: ${(err as Error).message}\n${child.output()}`)
      await sleep(100)
    }
  }
  return {
    url: db => `redis://127.0.0.1:${port}/${db}`,
    client,
    pid: child.proc.pid,
    // The connections' buffers (a pipelining client's query buffer can hold
    // megabytes for a while after a burst) are not the keys' memory: left out.
    async usedMemory () {
      const info = await client.info('memory')
      const field = (name: string) => {
        const match = new RegExp(`^${name}:(\\d+)`, 'm').exec(info)
        if (match === null) throw new Error(`INFO memory has no ${name}`)
        return Number(match[1])
      }
      return field('used_memory') - field('mem_clients_normal')
    }
  }
}
