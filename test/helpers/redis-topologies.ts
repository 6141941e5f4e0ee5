import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort, waitFor } from './ports.js'

const run = promisify(execFile)
interface Teardown { teardown(fn: () => unknown): void }

export interface Node { port: number, child: ChildProcess, kill(): Promise<void> }

async function ping (port: number): Promise<boolean> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  c.on('error', () => {})
  try {
    await c.connect()
    await c.ping()
    return true
  } catch {
    return false
  } finally {
    c.disconnect()
  }
}

function killer (child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
}

async function startNode (t: Teardown, dir: string, args: string[], port?: number): Promise<Node> {
  const p = port ?? await freePort()
  const child = spawn('redis-server', [...args, '--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  const kill = killer(child)
  t.teardown(kill)
  await waitFor(`redis-server on ${p}`, () => ping(p), 10_000, 50)
  return { port: p, child, kill }
}

async function tempDir (t: Teardown, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `sv-${name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

// Three masters and three replicas from plain redis-server processes, joined
// with redis-cli --cluster create. Fast failover: node timeout 1 s.
export async function startCluster (t: Teardown): Promise<{ nodes: Node[], hosts: string }> {
  const dir = await tempDir(t, 'cluster')
  const nodes: Node[] = []
  for (let i = 0; i < 6; i++) {
    const port = await freePort()
    nodes.push(await startNode(t, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0'], port))
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map(n => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 })
  await waitFor('cluster_state:ok on every node', async () => {
    for (const n of nodes) {
      const { stdout } = await run('redis-cli', ['-p', String(n.port), 'cluster', 'info'])
      if (!stdout.includes('cluster_state:ok')) return false
    }
    return true
  }, 30_000, 200)
  return { nodes, hosts: nodes.map(n => `127.0.0.1:${n.port}`).join(',') }
}

export async function clusterMasters (nodes: Node[]): Promise<Node[]> {
  const masters: Node[] = []
  for (const n of nodes) {
    if (n.child.exitCode !== null || n.child.signalCode !== null) continue
    const { stdout } = await run('redis-cli', ['-p', String(n.port), 'role'])
    if (stdout.startsWith('master')) masters.push(n)
  }
  return masters
}

// One master, one replica, three sentinels (quorum 2), fast failover.
export async function startSentinels (t: Teardown, name = 'svmaster'): Promise<{ master: Node, replica: Node, sentinels: Node[], hosts: string }> {
  const dir = await tempDir(t, 'sentinel')
  const master = await startNode(t, dir, [])
  const replica = await startNode(t, dir, ['--replicaof', '127.0.0.1', String(master.port)])
  const sentinels: Node[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const conf = join(dir, `sentinel-${port}.conf`)
    await writeFile(conf, [
      `port ${port}`,
      'bind 127.0.0.1',
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel parallel-syncs ${name} 1`,
      ''
    ].join('\n'))
    const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' })
    const kill = killer(child)
    t.teardown(kill)
    await waitFor(`sentinel on ${port}`, () => ping(port), 10_000, 50)
    sentinels.push({ port, child, kill })
  }
  await waitFor('the replica to sync', async () => {
    const { stdout } = await run('redis-cli', ['-p', String(replica.port), 'info', 'replication'])
    return stdout.includes('master_link_status:up')
  }, 20_000, 100)
  await waitFor('the sentinels to see each other and the replica', async () => {
    const { stdout } = await run('redis-cli', ['-p', String(sentinels[0]!.port), 'sentinel', 'master', name])
    const lines = stdout.split('\n').map(l => l.trim())
    const value = (key: string) => lines[lines.indexOf(key) + 1]
    return value('num-other-sentinels') === '2' && value('num-slaves') === '1'
  }, 20_000, 200)
  return { master, replica, sentinels, hosts: sentinels.map(s => `127.0.0.1:${s.port}`).join(',') }
}
