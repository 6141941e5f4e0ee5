// The cache epoch: every shared-cache entry carries the epoch it was filled
// under, and an entry of another epoch is void. Moving it voids the whole
// shared cache at once, so it moves only when nothing else can prove the
// cache right (see index.ts for when).
import type { FastifyBaseLogger } from 'fastify'
import { errorCode } from '../../errors.js'
import type { Metrics } from '../../metrics.js'
import type { SessionStore } from '../session-store.js'

export type EpochCause = 'watermark_missing' | 'log_pruned' | 'replay_too_large' | 'redis_unreachable' | 'redis_server_changed'

export interface Epoch {
  /** Unknown until Postgres has answered once: until then the shared cache is not read. */
  readonly current: string | undefined
  /** True while a move is owed but Postgres has not taken it yet. */
  readonly suspended: boolean
  adopt(next: string): void
  move(cause: EpochCause): Promise<void>
  /** Stops reading the shared cache until the epoch has moved (retried in the background). */
  distrust(cause: EpochCause): void
}

const RETRY_MS = 500
const RETRIES = 120

export function createEpoch (store: SessionStore, metrics: Metrics, log: FastifyBaseLogger, onChange: (epoch: string, first: boolean) => void): Epoch {
  let current: string | undefined
  // Moves are numbered as they start; a distrust is settled only by a move
  // that started after it (an earlier one may predate its reason).
  let started = 0
  let owedAfter: number | undefined
  const moves = metrics.epochMoves
  const ignored = metrics.cacheInvalidations.labels('epoch')

  function adopt (next: string): void {
    if (current !== undefined && BigInt(next) <= BigInt(current)) return
    const first = current === undefined
    current = next
    if (!first) ignored.inc()
    onChange(next, first)
  }

  async function move (cause: EpochCause): Promise<void> {
    const n = ++started
    adopt(await store.bumpEpoch())
    moves.labels(cause).inc()
    if (owedAfter !== undefined && n > owedAfter) owedAfter = undefined
  }

  return {
    get current () { return current },
    get suspended () { return owedAfter !== undefined },
    adopt,
    move,
    distrust (cause) {
      owedAfter = started
      ;(async () => {
        // Gives up after a minute, leaving the shared cache unread (safe)
        // until some later move succeeds.
        for (let attempt = 0; attempt < RETRIES && owedAfter !== undefined; attempt++) {
          try {
            await move(cause)
          } catch (err) {
            if (attempt === 0) log.warn({ code: errorCode(err), cause }, 'could not move the cache epoch yet; the shared cache stays unread')
            await new Promise(resolve => setTimeout(resolve, RETRY_MS).unref())
          }
        }
      })().catch(() => {})
    }
  }
}
