// POSTs JSON to the service over a keep-alive pool, within one deadline per
// call, retrying what may heal by itself (connection errors, 429, 502-504)
// while the deadline leaves room. It never throws: a failure is a value.
import { Pool } from 'undici'
import { retryAfterMs } from './retry-after.js'
import type { CallOptions, Unavailable, UnavailableReason } from './types.js'

export interface Answer {
  status: number
  body: unknown
  /** The raw Retry-After header, if any. */
  retryAfter?: string | string[] | undefined
}

export interface RetryInfo {
  /** 1 for the first retry. */
  attempt: number
  reason: UnavailableReason
  status?: number
  /** How long the client waits before it. */
  waitMs: number
}

export interface TransportOptions {
  /** The service's base URL, e.g. `http://session-validator.railway.internal:3000`. */
  url: string
  /** Sent as `x-api-key` when the service has SERVICE_API_KEYS. */
  apiKey?: string | undefined
  /** Deadline of one call, retries and waits included. Default 2000. */
  timeoutMs?: number | undefined
  /** Retries after the first attempt, at most. Default 2. */
  retries?: number | undefined
  /** Keep-alive connections to the service, at most. Default 16. */
  connections?: number | undefined
  /** Told before each retry: count them, log them. */
  onRetry?: ((info: RetryInfo) => void) | undefined
}

export interface Transport {
  post(path: string, payload: unknown, options?: CallOptions): Promise<Answer | Unavailable>
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

function positive (name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min) throw new TypeError(`${name} must be an integer >= ${min}`)
  return value
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

export function createTransport (options: TransportOptions): Transport {
  const base = new URL(options.url)
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('url must be an http: or https: URL')
  const prefix = base.pathname.replace(/\/+$/, '')
  const defaultTimeoutMs = positive('timeoutMs', options.timeoutMs, 2000)
  const retries = positive('retries', options.retries, 2, 0)
  const pool = new Pool(base.origin, { connections: positive('connections', options.connections, 16), pipelining: 1 })
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (options.apiKey !== undefined) headers['x-api-key'] = options.apiKey
  const onRetry = options.onRetry

  async function attempt (path: string, body: string, signal: AbortSignal): Promise<Answer> {
    const res = await pool.request({ path: prefix + path, method: 'POST', headers, body, signal })
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
      const timeoutMs = positive('timeoutMs', call.timeoutMs, defaultTimeoutMs)
      const deadline = performance.now() + timeoutMs
      const body = JSON.stringify(payload)
      const caller = call.signal
      // a function, not a property test: TypeScript would keep the first answer narrowed
      const aborted = () => caller?.aborted === true
      for (let n = 0; ; n++) {
        if (aborted()) return { outcome: 'unavailable', reason: 'aborted' }
        const left = deadline - performance.now()
        if (left <= 0) return { outcome: 'unavailable', reason: 'timeout' }
        const timer = AbortSignal.timeout(Math.ceil(left))
        let failure: Unavailable
        try {
          const answer = await attempt(path, body, caller === undefined ? timer : AbortSignal.any([caller, timer]))
          const reason = TRANSIENT[answer.status]
          if (reason === undefined) return answer
          failure = { outcome: 'unavailable', reason, status: answer.status }
          const after = retryAfterMs(answer.retryAfter)
          if (after !== undefined) failure.retryAfterMs = after
        } catch {
          if (aborted()) return { outcome: 'unavailable', reason: 'aborted' }
          if (timer.aborted) return { outcome: 'unavailable', reason: 'timeout' }
          failure = { outcome: 'unavailable', reason: 'connection' }
        }
        const waitMs = failure.retryAfterMs ?? BACKOFF_BASE_MS * 2 ** n
        // Waiting past the deadline helps nobody: the caller hears now, with when to retry.
        if (n >= retries || performance.now() + waitMs >= deadline) return failure
        onRetry?.({ attempt: n + 1, reason: failure.reason, ...(failure.status !== undefined ? { status: failure.status } : {}), waitMs })
        await sleep(waitMs, caller)
      }
    },
    async close () {
      await pool.close()
    }
  }
}
