// A primary and a streaming replica of the test's own (pg_basebackup -R).
import { join } from 'node:path'
import { freePort } from './ports.js'
import { startPostgresCluster } from './postgres-cluster.js'

interface Teardown { teardown(fn: () => unknown): void }

export interface PrimaryWithReplica {
  primaryUrl: string
  replicaUrl: string
}

export async function startPrimaryWithReplica (t: Teardown): Promise<PrimaryWithReplica> {
  const primary = await startPostgresCluster(t, { settings: { wal_level: 'replica', max_wal_senders: '4', hot_standby: 'on' } })
  const replicaPort = await freePort()
  const replica = join(primary.dir, 'replica')
  // registered after the primary's: torn down before it
  t.teardown(() => primary.as('pg_ctl', ['-D', replica, '-m', 'immediate', 'stop']).catch(() => {}))
  await primary.as('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', replica, '-R', '-X', 'stream'])
  const options = `-p ${replicaPort} -k ${primary.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c hot_standby=on`
  await primary.as('pg_ctl', ['-D', replica, '-o', options, '-l', join(primary.dir, 'replica.log'), '-w', 'start'])
  return {
    primaryUrl: primary.url,
    replicaUrl: `postgres://postgres@127.0.0.1:${replicaPort}/postgres`
  }
}
