import postgres from 'postgres'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { errorCode } from './session-service.js'

export const CHANNEL = 'session_validator'

export interface InvalidationListener {
  readonly listening: boolean
  close(): Promise<void>
}

interface Handlers {
  onNotification(payload: string): Promise<void>
  /** Called each time LISTEN (re)starts; notifications sent before are lost. */
  onListening(): Promise<void>
}

// A dedicated connection that LISTENs and comes back by itself. postgres.js'
// own sql.listen swallows a failed re-listen, so the retry loop is ours.
export function createInvalidationListener (
  url: string,
  config: Pick<Config, 'databaseConnectTimeoutSeconds'>,
  handlers: Handlers,
  log: FastifyBaseLogger
): InvalidationListener {
  let listening = false
  let closed = false
  let retryTimer: NodeJS.Timeout | undefined
  let attempt = 0

  // onnotify/onclose are postgres.js options its typings do not list
  const sql = postgres(url, {
    max: 1,
    idle_timeout: 0,
    max_lifetime: 0,
    connect_timeout: config.databaseConnectTimeoutSeconds,
    onnotice: () => {},
    connection: { application_name: 'session-validator-listener' },
    onnotify: (channel: string, payload: string) => {
      if (channel === CHANNEL) handlers.onNotification(payload).catch(() => {})
    },
    onclose: () => {
      if (closed) return
      if (listening) log.warn('invalidation listener lost its connection; entries cached so far will not be trusted')
      listening = false
      schedule()
    }
  } as postgres.Options<Record<string, postgres.PostgresType>>)

  function schedule (): void {
    if (closed || retryTimer !== undefined) return
    const delay = Math.min(100 * 2 ** attempt, 2000)
    attempt++
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      start().catch(() => {})
    }, delay)
  }

  async function start (): Promise<void> {
    if (closed || listening) return
    try {
      await sql.unsafe(`LISTEN ${CHANNEL}`)
      // Only after LISTEN: a change from now on is either notified or already
      // behind the epoch that onListening moves.
      await handlers.onListening()
      listening = true
      attempt = 0
      log.info('invalidation listener subscribed')
    } catch (err) {
      log.warn({ code: errorCode(err) }, 'invalidation listener could not subscribe; retrying')
      schedule()
    }
  }

  start().catch(() => {})

  return {
    get listening () { return listening },
    async close () {
      closed = true
      if (retryTimer !== undefined) clearTimeout(retryTimer)
      await sql.end({ timeout: 1 })
    }
  }
}
