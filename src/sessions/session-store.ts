// Postgres reads and writes of sessions: lookups, revokes, lists, activity.
import type postgres from 'postgres'
import type { Sql } from '../db/postgres.js'
import { CHANNEL } from './coherence/messages.js'
import type { Limiter } from '../db/limiter.js'
import type { Metrics } from '../metrics.js'
import { NO_EXTRA, type SessionRecord } from './session-record.js'
import { NO_EXTRA_FIELDS, type ExtraFields } from '../config.js'
import { extraColumns, normalizeExtras } from './extra-fields.js'
import { TimeoutError } from '../errors.js'

type Row = [
  token: string, id: string, userId: string, expiresAt: number, createdAt: number, lastActivityAt: number | null,
  ipAddress: string | null, userAgent: string | null,
  email: string, firstName: string | null, lastName: string | null, username: string | null,
  ...extra: unknown[]
]

export interface Revoked { digest: string, userId: string }

export interface Sliding { seconds: number, maxSeconds: number }

/** Where a page of the list ends: the last session's activity (epoch microseconds, exact) and id. */
export interface ListPosition { activityUs: string, id: string }

// listSessions' row as Postgres returns it (times as epoch-millisecond floats)
interface ListedRow {
  id: string
  created_ms: number
  activity_ms: number | null
  expires_ms: number
  ip_address: string | null
  user_agent: string | null
  activity_us: string
}

export interface ListedSession {
  id: string
  createdAt: number
  lastActivityAt: number | null
  expiresAt: number
  ipAddress: string | null
  userAgent: string | null
  /** coalesce(last_activity_at, created_at) in epoch microseconds: the list's order */
  activityUs: string
}

export type RevokeTarget =
  | { digest: string }
  | { sessionId: string }
  | { userId: string, keep?: { digest: string } | { sessionId: string } }

/** What a revoke's transaction carries besides the delete (coherence/index.ts drives it). */
export interface RevokeSteps {
  /** NOTIFY payload for the shared channel, sent inside the transaction: delivered at its commit. */
  barrier: string
  /** Tells Redis to forget these digests; false when it could not (the epoch then moves with the delete). */
  forget(digests: string[]): Promise<boolean>
}

export interface RevokeOutcome {
  revoked: Revoked[]
  /** every digest Redis was asked to forget (a token's own, deleted or not) */
  digests: string[]
  /** the epoch the transaction moved to, when Redis could not be told */
  movedTo: string | undefined
  /** when the commit was acknowledged (performance.now()) */
  committedAt: number
  /** the instances registered once the delete had committed; undefined when that could not be read */
  members: string[] | undefined
}

export interface SessionStore {
  findByDigest(digest: string): Promise<SessionRecord | undefined>
  /**
   * Deletes the target's rows in one transaction, pipelined on one connection:
   * BEGIN, DELETE and the barrier in one round trip (Redis told meanwhile when
   * the digest is known already), then the epoch move if Redis could not be
   * told, COMMIT and who is registered, in another.
   */
  revoke(target: RevokeTarget, steps: RevokeSteps): Promise<RevokeOutcome>
  bumpEpoch(): Promise<string>
  /** last_activity_at = now() for these sessions; with `sliding`, expires_at moves forward too. */
  writeActivity(ids: string[], sliding?: Sliding): Promise<number>
  /** The most recently active live sessions, for warming the cache, after the `after` position. */
  warmPage(limit: number, after: ListPosition | undefined): Promise<Array<{ digest: string, record: SessionRecord, position: ListPosition }>>
  /** Which of these sessions still exist (the warm-up's check, once it holds their fill leases). */
  existing(ids: readonly string[]): Promise<Set<string>>
  /** A user's live sessions, newest activity first, after the `after` position. */
  listSessions(userId: string, limit: number, after: ListPosition | undefined, idleBefore: number | undefined): Promise<ListedSession[]>
  ping(): Promise<void>
  /** On a replica: milliseconds its replay is behind (0 when caught up). */
  replicationLagMs(): Promise<number>
}

function toRecord (r: Row, fields: ExtraFields): SessionRecord {
  return {
    id: r[1],
    userId: r[2],
    expiresAt: Math.floor(r[3]),
    createdAt: Math.floor(r[4]),
    lastActivityAt: r[5] === null ? null : Math.floor(r[5]),
    ipAddress: r[6],
    userAgent: r[7],
    email: r[8],
    firstName: r[9],
    lastName: r[10],
    username: r[11],
    extra: r.length > 12 ? normalizeExtras(r.slice(12), fields) : NO_EXTRA
  }
}

interface Waiter { resolve(record: SessionRecord | undefined): void, reject(err: unknown): void }

// Lookups that arrive in one turn of the event loop go to Postgres as one
// query (token = ANY($1)): one round trip and one statement for many
// validations, where a query each would queue in the driver and cost Postgres
// a statement apiece. A batch waits for nothing but the end of the turn.
const MAX_BATCH = 500

type QueryName = 'find_session' | 'revoke' | 'bump_epoch' | 'write_activity' | 'list_sessions' | 'warm_page' | 'existing' | 'ping' | 'replication_lag'
// The queries each kind of store runs get their error series at start, so
// that rate() sees the first error and a dashboard shows 0, not nothing.
const PRIMARY_QUERIES: QueryName[] = ['find_session', 'revoke', 'bump_epoch', 'write_activity', 'list_sessions', 'warm_page', 'existing', 'ping']
const REPLICA_QUERIES: QueryName[] = ['find_session', 'replication_lag']

type Reserved = postgres.ReservedSql<Record<string, postgres.PostgresType>>

// The cache epoch's one move (coherence/epoch.ts), alone or inside a revoke's transaction.
const BUMP_EPOCH = 'UPDATE session_validator.cache_epoch SET epoch = epoch + 1 RETURNING epoch::text AS epoch'

interface Deleted { token: string, user_id: string }

function deleteRows (tx: Reserved, target: RevokeTarget) {
  const keep = 'userId' in target ? target.keep : undefined
  return 'digest' in target
    ? tx<Deleted[]>`DELETE FROM platform.user_sessions WHERE token = ${target.digest} RETURNING token, user_id`
    : 'sessionId' in target
      ? tx<Deleted[]>`DELETE FROM platform.user_sessions WHERE id = ${target.sessionId} RETURNING token, user_id`
      : keep === undefined
        ? tx<Deleted[]>`DELETE FROM platform.user_sessions WHERE user_id = ${target.userId} RETURNING token, user_id`
        : 'digest' in keep
          ? tx<Deleted[]>`DELETE FROM platform.user_sessions WHERE user_id = ${target.userId} AND token <> ${keep.digest} RETURNING token, user_id`
          : tx<Deleted[]>`DELETE FROM platform.user_sessions WHERE user_id = ${target.userId} AND id <> ${keep.sessionId} RETURNING token, user_id`
}

// Statements sent without waiting for the one before travel in one write and
// come back in one round trip; Postgres runs them in order.
async function revokeOn (tx: Reserved, target: RevokeTarget, steps: RevokeSteps): Promise<RevokeOutcome> {
  // a token's digest is known before the delete: Redis is told meanwhile
  const early = 'digest' in target ? steps.forget([target.digest]) : undefined
  let rows: readonly Deleted[]
  try {
    const begun = [tx`BEGIN`.execute(), deleteRows(tx, target).execute(), tx`SELECT pg_notify(${CHANNEL}, ${steps.barrier})`.execute()] as const
    rows = (await Promise.all(begun))[1]
  } catch (err) {
    await early
    await tx`ROLLBACK`.catch(() => {})
    throw err
  }
  const revoked = rows.map(r => ({ digest: r.token, userId: r.user_id }))
  const digests = revoked.map(r => r.digest)
  if ('digest' in target && !digests.includes(target.digest)) digests.push(target.digest)
  const told = early !== undefined ? await early : await steps.forget(digests)
  // if Redis cannot be told, the epoch moves with the delete, or neither happens
  // queries start when first awaited: execute() sends them in this order
  const moved = told ? undefined : tx.unsafe<Array<{ epoch: string }>>(BUMP_EPOCH).execute()
  let committedAt = 0
  const committed = tx`COMMIT`.execute().then(() => { committedAt = performance.now() })
  const registered = tx<Array<{ id: string }>>`SELECT id FROM session_validator.instances WHERE lease_until > clock_timestamp()`.execute()
  registered.catch(() => {})
  try {
    const [movedTo] = await Promise.all([moved, committed])
    const members = await registered.then(list => list.map(r => r.id), () => undefined)
    return { revoked, digests, movedTo: movedTo?.[0]?.epoch, committedAt, members }
  } catch (err) {
    await tx`ROLLBACK`.catch(() => {})
    throw err
  }
}

export function createSessionStore (sql: Sql, limiter: Limiter, metrics: Metrics, timeoutMs: number, queryPrefix = '', fields: ExtraFields = NO_EXTRA_FIELDS): SessionStore {
  // what a lookup reads, in Row's order; the extra identifiers are checked by
  // the configuration, so splicing them in is safe
  const columns = `s.token, s.id, s.user_id,
    date_part('epoch', s.expires_at) * 1000, date_part('epoch', s.created_at) * 1000,
    date_part('epoch', s.last_activity_at) * 1000, s.ip_address, s.user_agent,
    u.email, u.first_name, u.last_name, u.username${extraColumns(fields)}`
  const histogram = metrics.dbQueryDuration
  const errors = metrics.dbErrors
  for (const name of queryPrefix === '' ? PRIMARY_QUERIES : REPLICA_QUERIES) errors.labels(queryPrefix + name).inc(0)
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
  async function query<T> (label: QueryName, fn: () => Promise<T>): Promise<T> {
    const name = queryPrefix + label
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TimeoutError('QUERY_TIMEOUT')), timeoutMs)
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

  let pending: Map<string, Waiter[]> | undefined

  function lookupBatch (batch: Map<string, Waiter[]>): void {
    const digests = [...batch.keys()]
    // Times come back as epoch milliseconds (float8), which needs no Date
    // parsing; date_part stays in float8 where extract() would compute in
    // numeric, several times the CPU. `.values()` gives tuples, cheaper than
    // keyed rows.
    query('find_session', async () => await sql`
      SELECT ${sql.unsafe(columns)}
        FROM platform.user_sessions s
        JOIN platform.users u ON u.id = s.user_id
       WHERE s.token = ANY(${digests}::text[])`.values() as unknown as Row[])
      .then(rows => {
        const found = new Map<string, SessionRecord>()
        for (const row of rows) found.set(row[0], toRecord(row, fields))
        for (const [digest, waiters] of batch) {
          const record = found.get(digest)
          for (const w of waiters) w.resolve(record)
        }
      }, (err: unknown) => {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(err)
      })
  }

  return {
    findByDigest (digest) {
      return new Promise<SessionRecord | undefined>((resolve, reject) => {
        if (pending === undefined) {
          const batch = pending = new Map()
          setImmediate(() => {
            if (pending === batch) pending = undefined
            if (batch.size > 0) lookupBatch(batch)
          })
        }
        let waiters = pending.get(digest)
        if (waiters === undefined) pending.set(digest, waiters = [])
        waiters.push({ resolve, reject })
        if (pending.size >= MAX_BATCH) {
          const full = pending
          pending = undefined
          lookupBatch(new Map(full))
          full.clear() // its scheduled run finds it empty
        }
      })
    },

    async revoke (target, steps) {
      return await query('revoke', async () => {
        const tx = await sql.reserve()
        try {
          return await revokeOn(tx, target, steps)
        } finally {
          tx.release()
        }
      })
    },

    async bumpEpoch () {
      const rows = await query('bump_epoch', async () => await sql.unsafe<Array<{ epoch: string }>>(BUMP_EPOCH))
      return rows[0]?.epoch ?? '1'
    },

    async writeActivity (ids, sliding) {
      // One statement per flush, the flush's time for all. Sorted ids take row
      // locks in one order, so two instances flushing together cannot deadlock.
      // A sliding expiry only ever moves forward, and never past the maximum.
      ids.sort()
      const result = await query('write_activity', () => sliding === undefined
        ? sql`
          UPDATE platform.user_sessions
             SET last_activity_at = now()
           WHERE id = ANY(${ids}::uuid[])
             AND (last_activity_at IS NULL OR last_activity_at < now())`
        : sql`
          UPDATE platform.user_sessions
             SET last_activity_at = now(),
                 expires_at = greatest(expires_at, least(now() + ${sliding.seconds} * interval '1 second',
                                                         created_at + ${sliding.maxSeconds} * interval '1 second'))
           WHERE id = ANY(${ids}::uuid[])
             AND (last_activity_at IS NULL OR last_activity_at < now())
             AND expires_at > now()`)
      return result.count
    },

    async warmPage (limit, after) {
      const afterUs = after?.activityUs ?? null
      const afterId = after?.id ?? null
      const rows = await query('warm_page', async () => await sql`
        SELECT ((extract(epoch FROM s.last_activity_at) * 1000000)::bigint)::text, ${sql.unsafe(columns)}
          FROM platform.user_sessions s
          JOIN platform.users u ON u.id = s.user_id
         WHERE s.last_activity_at IS NOT NULL AND s.expires_at > now()
           AND (${afterUs}::bigint IS NULL
                OR (s.last_activity_at, s.id) < (timestamptz 'epoch' + ${afterUs}::bigint * interval '1 microsecond', ${afterId}::uuid))
         ORDER BY s.last_activity_at DESC, s.id DESC
         LIMIT ${limit}`.values() as unknown as Array<[string, ...Row]>)
      return rows.map(([activityUs, ...row]) => {
        const record = toRecord(row as unknown as Row, fields)
        return { digest: row[0] as string, record, position: { activityUs, id: record.id } }
      })
    },

    async existing (ids) {
      const rows = await query('existing', async () => await sql<Array<{ id: string }>>`
        SELECT id::text AS id FROM platform.user_sessions WHERE id = ANY(${ids as string[]}::uuid[])`)
      return new Set(rows.map(r => r.id))
    },

    async listSessions (userId, limit, after, idleBefore) {
      // Keyset pagination on (activity, id), newest first: stable while
      // sessions come and go, and no OFFSET to scan past.
      const afterUs = after?.activityUs ?? null
      const afterId = after?.id ?? null
      const notIdle = idleBefore === undefined ? null : new Date(idleBefore)
      // the position is exact microseconds (extract() computes in numeric): a
      // millisecond or float cursor would skip sessions that differ below it
      const rows = await query('list_sessions', async () => await sql<ListedRow[]>`
        SELECT id, date_part('epoch', created_at) * 1000 AS created_ms, date_part('epoch', last_activity_at) * 1000 AS activity_ms,
               date_part('epoch', expires_at) * 1000 AS expires_ms, ip_address, user_agent,
               ((extract(epoch FROM coalesce(last_activity_at, created_at)) * 1000000)::bigint)::text AS activity_us
          FROM platform.user_sessions
         WHERE user_id = ${userId}
           AND expires_at > now()
           AND (${notIdle}::timestamptz IS NULL OR coalesce(last_activity_at, created_at) >= ${notIdle}::timestamptz)
           AND (${afterUs}::bigint IS NULL
                OR (coalesce(last_activity_at, created_at), id) <
                   (timestamptz 'epoch' + ${afterUs}::bigint * interval '1 microsecond', ${afterId}::uuid))
         ORDER BY coalesce(last_activity_at, created_at) DESC, id DESC
         LIMIT ${limit}`)
      return rows.map(r => ({
        id: r.id,
        createdAt: Math.floor(r.created_ms),
        lastActivityAt: r.activity_ms === null ? null : Math.floor(r.activity_ms),
        expiresAt: Math.floor(r.expires_ms),
        ipAddress: r.ip_address,
        userAgent: r.user_agent,
        activityUs: r.activity_us
      }))
    },

    async ping () {
      await query('ping', () => sql`SELECT 1`)
    },

    async replicationLagMs () {
      // Caught up when everything received is replayed; otherwise the age of
      // the last replayed transaction (paused or slow replay both show here).
      const rows = await query('replication_lag', async () => await sql<Array<{ lag: number }>>`
        SELECT CASE
                 WHEN NOT pg_is_in_recovery() THEN 0
                 WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                 ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000, 1e9)
               END::float8 AS lag`)
      return rows[0]?.lag ?? Infinity
    }
  }
}
