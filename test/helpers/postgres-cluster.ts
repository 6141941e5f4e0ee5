// A Postgres cluster of the caller's own (initdb, pg_ctl), run as the
// `postgres` user when we are root (Postgres refuses root): restartable, and
// with the authentication the caller asks for. The soak imports it too (plain
// Node, so .ts specifiers).
import { execFile } from 'node:child_process'
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './ports.ts'

const run = promisify(execFile)
interface Teardown { teardown(fn: () => unknown): void }

async function pgBin (): Promise<string> {
  const { stdout } = await run('pg_config', ['--bindir']).catch(async () => await run('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1']))
  return stdout.trim()
}

export interface ClusterOptions {
  /** 'trust' (default), or 'scram-sha-256' with `password` for the postgres user */
  auth?: 'trust' | 'scram-sha-256'
  password?: string
  /** extra `-c name=value` settings */
  settings?: Record<string, string>
}

export interface PostgresCluster {
  port: number
  /** the folder holding the data directories, logs and the socket */
  dir: string
  /** a URL for the postgres user (with the password, when there is one) */
  url: string
  /** runs a Postgres binary (initdb, pg_ctl, pg_basebackup, ...) as the cluster's owner */
  as(cmd: string, args: string[]): Promise<{ stdout: string }>
  start(): Promise<void>
  /** fast shutdown: every connection is closed */
  stop(): Promise<void>
}

export async function startPostgresCluster (t: Teardown, opts: ClusterOptions = {}): Promise<PostgresCluster> {
  const bin = await pgBin()
  const dir = await mkdtemp(join(tmpdir(), 'sv-pg-'))
  const asRoot = userInfo().uid === 0
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    await chown(dir, Number(stdout), Number(gid))
  }
  const as = async (cmd: string, args: string[]) =>
    asRoot ? await run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { timeout: 60_000 }) : await run(join(bin, cmd), args, { timeout: 60_000 })
  const port = await freePort()
  const data = join(dir, 'data')
  const settings = { listen_addresses: '127.0.0.1', fsync: 'off', ...opts.settings }
  const options = [`-p ${port}`, `-k ${dir}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ')

  t.teardown(async () => {
    await as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })
  const init = ['-D', data, '-U', 'postgres', '--no-sync', '-A', opts.auth ?? 'trust']
  if (opts.password !== undefined) {
    const pwfile = join(dir, 'pwfile')
    await writeFile(pwfile, opts.password + '\n', { mode: 0o644 })
    init.push('--pwfile', pwfile)
  }
  await as('initdb', init)
  const cluster: PostgresCluster = {
    port,
    dir,
    url: `postgres://postgres${opts.password !== undefined ? ':' + encodeURIComponent(opts.password) : ''}@127.0.0.1:${port}/postgres`,
    as,
    start: async () => { await as('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'postgres.log'), '-w', 'start']) },
    stop: async () => { await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']) }
  }
  await cluster.start()
  return cluster
}
