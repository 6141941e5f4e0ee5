// The alerts each fault must raise, and by when: the one table to adjust when
// the rules or their documented times change (docs/operations.md, "Alerts and dashboard").
// Times are real time at 5 s scrapes and evaluations, a fault's counted from
// its start, a clear from its end; a run compressed by --time-scale K divides
// them by K, as it divides the rules' windows and for: and the scrape
// interval. Every alert, expected or not, must have stopped firing within its
// CLEARS_WITHIN (DEFAULT_CLEAR when it has none) after the fault ended. The
// names are checked against deploy/prometheus/alerts.yml at start: a name the
// rules do not have stops the run before it begins.
import type { FaultKind } from './fault-kinds.ts'

export interface Expected {
  alert: string
  /** the documented time within which it fires, e.g. '2m30s' */
  within: string
}

/** the "still firing a minute after recovery" */
export const DEFAULT_CLEAR = '1m'

// docs/operations.md's figures for each alert ("Alerts and dashboard", as the alert test
// holds them: test/deploy/alerts-fire.test.ts), the latest of each range:
// fires within, after its condition starts; clears within, after it ends.
// CallerThrottled and CacheEpochChurn count from their last 429 or epoch move.
export const CLEARS_WITHIN: Record<string, string> = {
  SessionValidatorTargetDown: '10s',
  SessionValidatorAllTargetsDown: '10s',
  SessionValidatorRedisNotAnswering: '15s',
  SessionValidatorRedisUnreachable: '35s',
  SessionValidatorCircuitOpen: '15s',
  SessionValidatorValidationSlow: '45s',
  SessionValidatorCacheHitRatioLow: '40s',
  SessionValidatorPostgresErrors: '35s',
  SessionValidatorHigh503Rate: '30s',
  SessionValidatorCallerThrottled: '65s',
  SessionValidatorCacheEpochChurn: '65s'
}

// What each fault must raise. Revokes go on through a Redis outage, and each
// one that cannot reach Redis moves the epoch: churn. The flood comes from
// one end-user address: its own budget throttles it, which by design pages
// nobody (CallerThrottled is for a whole caller). A restart, a Redis at its
// maxmemory, resets here and there: nothing to page for.
export const EXPECTED: Record<FaultKind, Expected[]> = {
  'rolling-restart': [],
  'instance-kill': [
    { alert: 'SessionValidatorTargetDown', within: '40s' }
  ],
  'redis-kill': [
    { alert: 'SessionValidatorRedisNotAnswering', within: '45s' },
    { alert: 'SessionValidatorRedisUnreachable', within: '55s' },
    { alert: 'SessionValidatorCircuitOpen', within: '80s' },
    { alert: 'SessionValidatorCacheEpochChurn', within: '310s' }
  ],
  'redis-freeze': [
    { alert: 'SessionValidatorRedisNotAnswering', within: '45s' }
  ],
  'redis-maxmemory': [],
  'postgres-resets': [],
  'postgres-partition': [
    { alert: 'SessionValidatorPostgresErrors', within: '75s' },
    { alert: 'SessionValidatorHigh503Rate', within: '80s' }
  ],
  'postgres-restart': [
    { alert: 'SessionValidatorPostgresErrors', within: '75s' },
    { alert: 'SessionValidatorHigh503Rate', within: '80s' }
  ],
  'unknown-flood': []
}
