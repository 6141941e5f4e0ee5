// Notifications in: a dedicated Postgres connection that LISTENs on the shared
// channel and on this instance's own, and comes back by itself. It also sends
// this instance's acknowledgements: an idle connection, so an answer to a
// revoke's barrier never queues behind probes or lookups.
import postgres from 'postgres'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../../config.js'
import { errorCode } from '../../errors.js'

export interface FeedHandlers {
  /** Called synchronously as each notification is parsed: in commit order. */
  notify(channel: string, payload: string): void
  /** LISTEN is in effect on a fresh connection; anything sent before was not heard. */
  up(): void
  /** The connection is gone: notifications may be missed from now on. */
  down(): void
}

export interface NotificationFeed {
  start(channels: readonly string[], handlers: FeedHandlers): void
  /** NOTIFY `channel` with `payload`, on the feed's own connection. */
  send(channel: string, payload: string): Promise<void>
  readonly listening: boolean
  close(): Promise<void>
}

export type Send = (channel: string, payload: string) => Promise<void>

/** Where notifications come from when they do not travel over a LISTEN connection (the embedded demo database). */
export interface InProcessNotifications {
  onNotification(channels: readonly string[], listener: (channel: string, payload: string) => void): Promise<void>
}

// postgres.js' own sql.listen swallows a failed re-listen, so the retry loop is ours.
export function postgresFeed (url: string, config: Pick<Config, 'databaseConnectTimeoutSeconds'>, log: FastifyBaseLogger, instanceId: string): NotificationFeed {
  let listening = false
  let closed = false
  let retryTimer: NodeJS.Timeout | undefined
  let attempt = 0
  let channels: readonly string[] = []
  let handlers: FeedHandlers | undefined

  // onnotify/onclose are postgres.js options its typings do not list
  const sql = postgres(url, {
    max: 1,
    idle_timeout: 0,
    max_lifetime: 0,
    connect_timeout: config.databaseConnectTimeoutSeconds,
    onnotice: () => {},
    // the instance id tells an operator (and a test) whose listener a backend is.
    // What it sends (acknowledgements) need not survive a crash of Postgres,
    // which ends the listener anyway: its commits do not wait for the WAL flush.
    connection: { application_name: `session-validator-listener ${instanceId}`, synchronous_commit: 'off' },
    onnotify: (channel: string, payload: string) => { handlers?.notify(channel, payload) },
    onclose: () => {
      if (closed) return
      if (listening) {
        log.warn('invalidation listener lost its connection; catching up once it is back')
        listening = false
        handlers?.down()
      }
      schedule()
    }
  } as postgres.Options<Record<string, postgres.PostgresType>>)

  function schedule (): void {
    if (closed || retryTimer !== undefined) return
    const delay = Math.min(100 * 2 ** attempt, 2000)
    attempt++
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      subscribe().catch(() => {})
    }, delay)
  }

  async function subscribe (): Promise<void> {
    if (closed || listening) return
    try {
      await sql.unsafe(channels.map(c => `LISTEN ${c};`).join(' '))
      listening = true
      attempt = 0
      log.info('invalidation listener subscribed')
      handlers?.up()
    } catch (err) {
      log.warn({ code: errorCode(err) }, 'invalidation listener could not subscribe; retrying')
      schedule()
    }
  }

  return {
    start (names, h) {
      channels = names
      handlers = h
      subscribe().catch(() => {})
    },
    async send (channel, payload) {
      await sql`SELECT pg_notify(${channel}, ${payload})`
    },
    get listening () { return listening },
    async close () {
      closed = true
      if (retryTimer !== undefined) clearTimeout(retryTimer)
      await sql.end({ timeout: 1 })
    }
  }
}

// The embedded demo database (PGlite) is one backend behind a socket server:
// a NOTIFY reaches the connection that sent it, not the listeners. Its
// notifications are read in-process instead (src/demo/embedded-postgres.ts),
// and sent through any connection (`send`).
export function inProcessFeed (source: InProcessNotifications, send: Send): NotificationFeed {
  return {
    send,
    start (channels, handlers) {
      source.onNotification(channels, (channel, payload) => {
        if (channels.includes(channel)) handlers.notify(channel, payload)
      }).then(() => handlers.up(), () => {})
    },
    listening: true,
    async close () {}
  }
}
