// A bound on in-flight Postgres queries, refusing the overflow with a 503.
import { DependencyUnavailableError } from '../errors.js'

// Keeps no more queries in flight than the pool has connections: postgres.js
// would otherwise queue them internally, and a long driver queue slows every
// call. Waiters beyond `queueMax` are refused at once with a 503.
export interface Limiter {
  run<T>(fn: () => Promise<T>): Promise<T>
  readonly active: number
  readonly waiting: number
}

export function createLimiter (max: number, queueMax: number): Limiter {
  let active = 0
  const queue: Array<() => void> = []

  function release (): void {
    const next = queue.shift()
    if (next !== undefined) next()
    else active--
  }

  return {
    get active () { return active },
    get waiting () { return queue.length },
    async run<T>(fn: () => Promise<T>): Promise<T> {
      if (active < max) {
        active++
      } else if (queue.length < queueMax) {
        // the slot is handed over by release(), so `active` stays as it is
        await new Promise<void>(resolve => queue.push(resolve))
      } else {
        throw new DependencyUnavailableError()
      }
      try {
        return await fn()
      } finally {
        release()
      }
    }
  }
}
