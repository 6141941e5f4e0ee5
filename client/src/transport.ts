// POSTs JSON to the service over a keep-alive pool (or the caller's own
// undici dispatcher), within one deadline per call, retrying what may heal by
// itself (refused or reset connections, 429, 502-504) while the deadline
// leaves room. It never throws for the network: a failure is a value, with its cause.
import { Pool, type Dispatcher } from 'undici'
import { codeOf, failureOf } from './failure.js'
import { safely, type Hook } from './hooks.js'
import { retryAfterMs } from './retry-after.js'
import type { CallOptions, Unavailable, UnavailableReason } from './types.js'
import { VERSION } from './version.js'

export interface Answer {
  status: number
  body: unknown
  /** The raw Retry-After header, if any. */
  retryAfter?: string | string[] | undefined
}

/** What the transport hands back: the last answer or failure, and how many requests it took. */
export interface Exchange {
  result: Answer | Unavailable
  attempts: number
}

export interface RetryInfo {
  /** 1 for the first retry. */
  attempt: number
  reason: UnavailableReason
  status?: number
  /** The failed request's error code (`ECONNREFUSED`, ...), when no answer came. */
  cause?: string
  /** How long the client waits before it. */
  waitMs: number
}

export interface TransportOptions {
  /**
   * The service's base URL, e.g. `http://session-validator.railway.internal:3000`.
   * A path is a prefix of every route; a query string is sent with every request.
   */
  url: string
  /** Sent as `x-api-key` when the service has SERVICE_API_KEYS. */
  apiKey?: string | undefined
  /** Deadline of one call, retries and waits included, in milliseconds. Default 2000. */
  timeoutMs?: number | undefined
  /** Retries after the first attempt, at most. Default 2. */
  retries?: number | undefined
  /** Keep-alive connections to the service, at most. Default 16. Not with `dispatcher`. */
  connections?: number | undefined
  /**
   * An undici dispatcher of your own (an `Agent` with a private CA, a
   * `ProxyAgent`, a `MockAgent` in tests), used instead of the client's pool;
   * `close()` leaves it open: it is yours to close.
   */
  dispatcher?: Dispatcher | undefined
  /** Told before each retry: count them, log them. A throwing hook is ignored. */
  onRetry?: Hook<RetryInfo> | undefined
}

export interface Transport {
  post(path: string, payload: unknown, options?: CallOptions): Promise<Exchange>
  close(): Promise<void>
}

// Statuses worth another attempt: throttled, or the service (or a proxy in
// front of it) could not answer right now.
const TRANSIENT: Record<number, UnavailableReason> = {
  429: 'rate_limited',
  502: 'service_unavailable',
  503: 'service_unavailable',
  504: 'service_unavailable'
}

// Between connection attempts when no Retry-After says otherwise: 50, 100, 200... ms.
const BACKOFF_BASE_MS = 50

export const USER_AGENT = `session-validator-client/${VERSION}`

function count (name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min) throw new TypeError(`${name} must be an integer >= ${min}`)
  return value
}

// Milliseconds need not be whole: a caller's `deadline - performance.now()` is not.
function milliseconds (name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`${name} must be a finite number of milliseconds`)
  return value
}

function baseUrl (url: string): URL {
  const base = new URL(url)
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('url must be an http: or https: URL')
  // Neither would be sent: say so rather than drop them.
  if (base.username !== '' || base.password !== '') throw new TypeError('url must not carry credentials: use apiKey')
  if (base.hash !== '') throw new TypeError('url must not have a #fragment')
  return base
}

function sleep (ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise(resolve => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

// Lower-cased, so that a caller's `Content-Type` cannot ride beside ours.
function merged (own: Readonly<Record<string, string>>, caller: Readonly<Record<string, string>> | undefined): Record<string, string> {
  if (caller === undefined) return own as Record<string, string>
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(caller)) headers[name.toLowerCase()] = value
  return Object.assign(headers, own)
}

export function createTransport (options: TransportOptions): Transport {
  const base = baseUrl(options.url)
  const prefix = base.pathname.replace(/\/+$/, '')
  const defaultTimeoutMs = milliseconds('timeoutMs', options.timeoutMs ?? 2000)
  if (defaultTimeoutMs <= 0) throw new TypeError('timeoutMs must be more than 0')
  const retries = count('retries', options.retries, 2, 0)
  if (options.dispatcher !== undefined && options.connections !== undefined) {
    throw new TypeError('connections sizes the client\'s own pool: with a dispatcher of your own, size that instead')
  }
  const own = options.dispatcher === undefined
  const dispatcher: Dispatcher = options.dispatcher ?? new Pool(base.origin, { connections: count('connections', options.connections, 16, 1), pipelining: 1 })
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': USER_AGENT }
  if (options.apiKey !== undefined) headers['x-api-key'] = options.apiKey
  const onRetry = safely(options.onRetry, 'onRetry')
  let closing: Promise<void> | undefined

  async function attempt (path: string, body: string, call: CallOptions, signal: AbortSignal): Promise<Answer> {
    const res = await dispatcher.request({
      origin: base.origin, path: prefix + path + base.search, method: 'POST', headers: merged(headers, call.headers), body, signal
    })
    const text = await res.body.text()
    let parsed: unknown
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      parsed = undefined
    }
    return { status: res.statusCode, body: parsed, retryAfter: res.headers['retry-after'] }
  }

  return {
    async post (path, payload, call = {}) {
      const timeoutMs = call.timeoutMs === undefined ? defaultTimeoutMs : milliseconds('timeoutMs', call.timeoutMs)
      const deadline = performance.now() + timeoutMs
      const body = JSON.stringify(payload)
      const caller = call.signal
      // a function, not a property test: TypeScript would keep the first answer narrowed
      const aborted = () => caller?.aborted === true
      for (let n = 0; ; n++) {
        if (aborted()) return { result: { outcome: 'unavailable', reason: 'aborted' }, attempts: n }
        const left = deadline - performance.now()
        if (left <= 0) return { result: { outcome: 'unavailable', reason: 'timeout' }, attempts: n }
        const timer = AbortSignal.timeout(Math.ceil(left))
        let failure: Unavailable
        let retriable = true
        try {
          const answer = await attempt(path, body, call, caller === undefined ? timer : AbortSignal.any([caller, timer]))
          const reason = TRANSIENT[answer.status]
          if (reason === undefined) return { result: answer, attempts: n + 1 }
          failure = { outcome: 'unavailable', reason, status: answer.status }
          const after = retryAfterMs(answer.retryAfter)
          if (after !== undefined) failure.retryAfterMs = after
        } catch (err) {
          if (aborted()) return { result: { outcome: 'unavailable', reason: 'aborted' }, attempts: n + 1 }
          if (timer.aborted) return { result: { outcome: 'unavailable', reason: 'timeout' }, attempts: n + 1 }
          // e.g. a header value with a line break: the caller's bug, not an outage
          if (codeOf(err) === 'UND_ERR_INVALID_ARG') throw new TypeError(`session-validator client: ${(err as Error).message}`)
          const failed = failureOf(err)
          failure = failed.unavailable
          retriable = failed.retriable
        }
        const waitMs = failure.retryAfterMs ?? BACKOFF_BASE_MS * 2 ** n
        // Waiting past the deadline helps nobody: the caller hears now, with when to retry.
        if (!retriable || closing !== undefined || n >= retries || performance.now() + waitMs >= deadline) {
          return { result: failure, attempts: n + 1 }
        }
        onRetry({
          attempt: n + 1,
          reason: failure.reason,
          ...(failure.status !== undefined ? { status: failure.status } : {}),
          ...(failure.cause !== undefined ? { cause: failure.cause } : {}),
          waitMs
        })
        await sleep(waitMs, caller)
      }
    },
    close () {
      // a caller's dispatcher is the caller's to close
      closing ??= own ? dispatcher.close() : Promise.resolve()
      return closing
    }
  }
}
