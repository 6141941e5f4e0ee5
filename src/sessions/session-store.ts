import type { Sql } from '../db/postgres.js'
import type { Limiter } from '../db/limiter.js'
import type { Metrics } from '../metrics.js'
import type { SessionRecord } from './session-record.js'

type Row = [
  id: string, userId: string, expiresAt: number, createdAt: number, lastActivityAt: number | null,
  ipAddress: string | null, userAgent: string | null,
  email: string, firstName: string | null, lastName: string | null, username: string | null
]

class QueryTimeoutError extends Error {
  code = 'QUERY_TIMEOUT'
}

export interface Revoked { digest: string, userId: string }

export interface SessionStore {
  findByDigest(digest: string): Promise<SessionRecord | undefined>
  /** Runs `fn` in a transaction holding the deleted rows; `bumpEpoch` inside it commits with the delete. */
  revoke<T>(target: { digest: string } | { sessionId: string } | { userId: string }, fn: (revoked: Revoked[], bumpEpoch: () => Promise<void>) => Promise<T>): Promise<T>
  readEpoch(): Promise<string>
  bumpEpoch(): Promise<string>
  writeActivity(ids: string[]): Promise<number>
  ping(): Promise<void>
  /** On a replica: milliseconds its replay is behind (0 when caught up). */
  replicationLagMs(): Promise<number>
}

function toRecord (r: Row): SessionRecord {
  return {
    id: r[0],
    userId: r[1],
    expiresAt: r[2],
    createdAt: r[3],
    lastActivityAt: r[4],
    ipAddress: r[5],
    userAgent: r[6],
    email: r[7],
    firstName: r[8],
    lastName: r[9],
    username: r[10]
  }
}

export function createSessionStore (sql: Sql, limiter: Limiter, metrics: Metrics, timeoutMs: number, queryPrefix = ''): SessionStore {
  const histogram = metrics.dbQueryDuration
  const errors = metrics.dbErrors
  // label children looked up once per query name, not once per query
  const timers = new Map<string, { observe(v: number): void }>()
  const timerFor = (name: string) => {
    let child = timers.get(name)
    if (child === undefined) timers.set(name, child = histogram.labels(name))
    return child
  }

  // A frozen Postgres must not hold requests forever: past the timeout the
  // caller gets an error (a 503) while the query keeps its slot until it ends,
  // so the number in flight never exceeds the pool.
  async function query<T> (label: string, fn: () => Promise<T>): Promise<T> {
    const name = queryPrefix + label
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new QueryTimeoutError()), timeoutMs)
    })
    const duration = timerFor(name)
    const run = limiter.run(async () => {
      const start = performance.now()
      try {
        return await fn()
      } finally {
        duration.observe((performance.now() - start) / 1000)
      }
    })
    try {
      return await Promise.race([run, timeout])
    } catch (err) {
      errors.labels(name).inc()
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  return {
    async findByDigest (digest) {
      // Times come back as epoch milliseconds (float8), which needs no Date
      // parsing; date_part stays in float8 where extract() would compute in
      // numeric, several times the CPU. `.values()` gives tuples, cheaper than
      // keyed rows.
      const rows = await query('find_session', async () => await sql`
        SELECT s.id, s.user_id,
               date_part('epoch', s.expires_at) * 1000,
               date_part('epoch', s.created_at) * 1000,
               date_part('epoch', s.last_activity_at) * 1000,
               s.ip_address, s.user_agent,
               u.email, u.first_name, u.last_name, u.username
          FROM platform.user_sessions s
          JOIN platform.users u ON u.id = s.user_id
         WHERE s.token = ${digest}`.values() as unknown as Row[])
      const row = rows[0]
      if (row === undefined) return undefined
      const record = toRecord(row)
      record.expiresAt = Math.floor(record.expiresAt)
      record.createdAt = Math.floor(record.createdAt)
      if (record.lastActivityAt !== null) record.lastActivityAt = Math.floor(record.lastActivityAt)
      return record
    },

    async revoke<T> (target: Parameters<SessionStore['revoke']>[0], fn: (revoked: Revoked[], bumpEpoch: () => Promise<void>) => Promise<T>): Promise<T> {
      return await query('revoke', () => sql.begin(async tx => {
        const rows = ('digest' in target
          ? await tx`DELETE FROM platform.user_sessions WHERE token = ${target.digest} RETURNING token, user_id`.values()
          : 'sessionId' in target
            ? await tx`DELETE FROM platform.user_sessions WHERE id = ${target.sessionId} RETURNING token, user_id`.values()
            : await tx`DELETE FROM platform.user_sessions WHERE user_id = ${target.userId} RETURNING token, user_id`.values()
        ) as unknown as Array<[string, string]>
        const revoked = rows.map(([digest, userId]) => ({ digest, userId }))
        return await fn(revoked, async () => {
          await tx`UPDATE session_validator.cache_epoch SET epoch = epoch + 1`
        })
      }) as Promise<T>)
    },

    async readEpoch () {
      const rows = await query('read_epoch', async () =>
        await sql`SELECT epoch::text FROM session_validator.cache_epoch`.values() as unknown as Array<[string]>)
      return rows[0]?.[0] ?? '1'
    },

    async bumpEpoch () {
      const rows = await query('bump_epoch', async () =>
        await sql`UPDATE session_validator.cache_epoch SET epoch = epoch + 1 RETURNING epoch::text`.values() as unknown as Array<[string]>)
      return rows[0]?.[0] ?? '1'
    },

    async writeActivity (ids) {
      // One statement per flush, the flush's time for all. Sorted ids take row
      // locks in one order, so two instances flushing together cannot deadlock.
      ids.sort()
      const result = await query('write_activity', () => sql`
        UPDATE platform.user_sessions
           SET last_activity_at = now()
         WHERE id = ANY(${ids}::uuid[])
           AND (last_activity_at IS NULL OR last_activity_at < now())`)
      return result.count
    },

    async ping () {
      await query('ping', () => sql`SELECT 1`)
    },

    async replicationLagMs () {
      // Caught up when everything received is replayed; otherwise the age of
      // the last replayed transaction (paused or slow replay both show here).
      const rows = await query('replication_lag', async () => await sql`
        SELECT CASE
                 WHEN NOT pg_is_in_recovery() THEN 0
                 WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                 ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000, 1e9)
               END::float8`.values() as unknown as Array<[number]>)
      return rows[0]?.[0] ?? Infinity
    }
  }
}
