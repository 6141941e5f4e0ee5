// The timeout and circuit breaker every Redis call of the cache goes through,
// with a breaker that closes as soon as Redis answers again, and only then.
import {
  circuitBreaker, CircuitState, handleAll, SamplingBreaker, timeout, TimeoutStrategy, wrap,
  type IBackoff, type IPolicy
} from 'cockatiel'
import type { RedisClient } from './redis-client.js'

export type CircuitName = 'closed' | 'open' | 'half-open'

export interface RedisPolicyOptions {
  timeoutMs: number
  threshold: number
  windowMs: number
  /** The longest wait between trials while the circuit keeps reopening. */
  maxTrialWaitMs: number
}

export interface RedisPolicy {
  readonly policy: IPolicy
  readonly circuit: CircuitName
  onStateChange(listener: (state: CircuitName) => void): void
  close(): void
}

// While the circuit is open, how often a PING asks whether Redis answers.
export const PROBE_EVERY_MS = 250

function circuitName (state: CircuitState): CircuitName {
  if (state === CircuitState.Closed) return 'closed'
  if (state === CircuitState.HalfOpen) return 'half-open'
  return 'open'
}

// A PING's answer within `ms`; a later answer or an error is a no.
export function answeredWithin (reply: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve(false), ms)
    reply.then(() => { clearTimeout(timer); resolve(true) }, () => { clearTimeout(timer); resolve(false) })
  })
}

/**
 * cockatiel half-opens a circuit after a fixed wait, and the call that finds
 * it half-open is the trial: against a Redis still frozen that call waits out
 * the timeout, and against one back a minute early the cache stays unused.
 * Here the wait is "until Redis answers": while the circuit is open a
 * background PING (one at a time, judged by the same timeout) probes the
 * connection, and only a PONG in time lets the next call through as the
 * trial — the probe's own PING when no request comes first. Requests are
 * refused at once meanwhile and fall back to Postgres. A circuit that reopens
 * right after closing (Redis answers PING but the calls still fail) waits
 * longer each time before its next trial, up to `maxTrialWaitMs`.
 */
export function createRedisPolicy (client: RedisClient, opts: RedisPolicyOptions): RedisPolicy {
  let answered = false
  let openedAt = 0
  let closedAt = -Infinity
  let trialWait = 0
  let last = CircuitState.Closed
  let closed = false

  const gate: IBackoff<unknown> = {
    get duration () { return answered && Date.now() - openedAt >= trialWait ? 0 : Infinity },
    next: () => gate
  }
  // The breaker must trip under light traffic too: five calls in the window
  // are enough for it to judge (cockatiel's default needs ~10 per second).
  const breaker = circuitBreaker(handleAll, {
    halfOpenAfter: gate,
    breaker: new SamplingBreaker({ threshold: opts.threshold, duration: opts.windowMs, minimumRps: 5000 / opts.windowMs })
  })
  // abortOnReturn off: aborting each call's signal on success builds a
  // DOMException per Redis call, a measurable cost on the hot path.
  const policy = wrap(breaker, timeout(opts.timeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false }))

  let wake: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined
  const pause = () => new Promise<void>(resolve => {
    wake = resolve
    timer = setTimeout(resolve, PROBE_EVERY_MS)
    timer.unref()
  })

  let probing = false
  async function probe (): Promise<void> {
    if (probing) return
    probing = true
    try {
      while (breaker.state === CircuitState.Open) {
        if (closed) return
        if (client.status === 'ready') {
          const reply = client.ping()
          if (await answeredWithin(reply, opts.timeoutMs)) {
            answered = true
            if (gate.duration === 0) {
              await policy.execute(() => client.ping()).catch(() => {})
              continue
            }
          } else {
            // at most one PING outstanding: a frozen Redis gets no pile of them
            await reply.catch(() => {})
          }
        }
        await pause()
      }
    } finally {
      probing = false
    }
  }

  breaker.onStateChange(state => {
    if (state === CircuitState.Open) {
      const premature = last === CircuitState.HalfOpen || Date.now() - closedAt < opts.windowMs
      trialWait = premature ? Math.min(opts.maxTrialWaitMs, Math.max(PROBE_EVERY_MS, trialWait * 2)) : 0
      answered = false
      openedAt = Date.now()
      probe().catch(() => {})
    } else if (state === CircuitState.Closed) {
      closedAt = Date.now()
    }
    last = state
  })

  return {
    policy,
    get circuit () { return circuitName(breaker.state) },
    onStateChange (listener) {
      breaker.onStateChange(state => listener(circuitName(state)))
    },
    close () {
      closed = true
      clearTimeout(timer)
      wake?.()
    }
  }
}
