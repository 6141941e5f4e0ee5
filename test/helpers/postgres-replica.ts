import { execFile } from 'node:child_process'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './ports.js'

const run = promisify(execFile)
interface Teardown { teardown(fn: () => unknown): void }

async function pgBin (): Promise<string> {
  const { stdout } = await run('pg_config', ['--bindir']).catch(async () => await run('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1']))
  return stdout.trim()
}

export interface PrimaryWithReplica {
  primaryUrl: string
  replicaUrl: string
}

// A primary and a streaming replica of the test's own (initdb, then
// pg_basebackup -R), run as the `postgres` user: Postgres refuses root.
export async function startPrimaryWithReplica (t: Teardown): Promise<PrimaryWithReplica> {
  const bin = await pgBin()
  const dir = await mkdtemp(join(tmpdir(), 'sv-replica-'))
  const asRoot = userInfo().uid === 0
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    await chown(dir, Number(stdout), Number(gid))
  }
  const as = async (cmd: string, args: string[]) =>
    asRoot ? await run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { timeout: 60_000 }) : await run(join(bin, cmd), args, { timeout: 60_000 })
  const primaryPort = await freePort()
  const replicaPort = await freePort()
  const primary = join(dir, 'primary')
  const replica = join(dir, 'replica')
  const options = (port: number) => `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c wal_level=replica -c max_wal_senders=4 -c hot_standby=on`

  t.teardown(async () => {
    for (const data of [replica, primary]) await as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })
  await as('initdb', ['-D', primary, '-A', 'trust', '-U', 'postgres', '--no-sync'])
  await as('pg_ctl', ['-D', primary, '-o', options(primaryPort), '-l', join(dir, 'primary.log'), '-w', 'start'])
  await as('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', '-D', replica, '-R', '-X', 'stream'])
  await as('pg_ctl', ['-D', replica, '-o', options(replicaPort), '-l', join(dir, 'replica.log'), '-w', 'start'])
  return {
    primaryUrl: `postgres://postgres@127.0.0.1:${primaryPort}/postgres`,
    replicaUrl: `postgres://postgres@127.0.0.1:${replicaPort}/postgres`
  }
}
