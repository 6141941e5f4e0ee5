// A Postgres read replica for misses, used only while it is close behind.
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { createSql } from '../db/postgres.js'
import { createLimiter } from '../db/limiter.js'
import { failureLog } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { SessionRecord } from './session-record.js'
import { createSessionStore } from './session-store.js'

export interface ReplicaReader {
  /** Whether a miss may read the replica now. */
  usable(): boolean
  find(digest: string): Promise<SessionRecord | undefined>
  /** A change was notified: the replica may not have it yet. */
  changed(): void
  /** A replica answer had to be confirmed on the primary. */
  confirmed(): void
  close(): Promise<void>
}

const PROBE_EVERY_MS = 500

// Misses read the replica only while it is close behind (measured), and not
// right after a notified change it may not have replayed yet.
export function createReplicaReader (url: string, config: Config, metrics: Metrics, log: FastifyBaseLogger): ReplicaReader {
  const sql = createSql(config, url)
  const store = createSessionStore(sql, createLimiter(config.databasePoolMax, config.databaseQueueMax), metrics, config.databaseQueryTimeoutMs, 'replica_', config.extraFields)
  const maxLag = config.databaseReadMaxLagMs
  let lagOk = false
  let lastChange = 0
  const failures = failureLog(code => log.warn({ code }, 'read replica unreachable; misses read the primary'))

  async function probe (): Promise<void> {
    try {
      const lag = await store.replicationLagMs()
      lagOk = lag <= maxLag
      metrics.replicaLag.set(lag / 1000)
      failures.ok()
    } catch (err) {
      lagOk = false
      failures.failed(err)
    }
  }
  const timer = setInterval(() => { probe().catch(() => {}) }, PROBE_EVERY_MS)
  timer.unref()
  probe().catch(() => {})

  return {
    usable: () => lagOk && Date.now() - lastChange > maxLag,
    find: digest => store.findByDigest(digest),
    changed () { lastChange = Date.now() },
    confirmed () { metrics.replicaConfirmations.inc() },
    async close () {
      clearInterval(timer)
      await sql.end({ timeout: 5 })
    }
  }
}
