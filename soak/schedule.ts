// The run's timetable: a healthy baseline, then the faults one after another,
// each held long enough for the alerts it must raise to fire (at the run's
// time scale) and followed by a recovery long enough to judge the hit ratio
// and see every alert clear.
import { seconds } from '../test/helpers/alert-rules.ts'
import { CLEARS_WITHIN, DEFAULT_CLEAR, EXPECTED, type Expected } from './expectations.ts'
import { RESTARTS, type FaultKind } from './fault-kinds.ts'

export interface Step {
  kind: FaultKind
  /** 0-based pass over the faults */
  pass: number
  holdMs: number
  recoverMs: number
  /** the instance a fault of one instance picks (kill, partition) */
  target: number
  /** the alerts it must raise, each with the latest it may fire, from the fault's start */
  expected: Array<Expected & { deadlineMs: number }>
}

export interface Plan {
  baselineMs: number
  steps: Step[]
  /** seconds between the rolling restart's restarts */
  restartEveryMs: number
  /** from a fault's end, the latest an alert may still fire */
  clearDeadlineMs(alert: string): number
  /** the hit ratio is judged over [end + delay, end + delay + window] */
  hitRatioDelayMs: number
  hitRatioWindowMs: number
  /** baseline and steps, without set-up and the final settling */
  totalMs: number
}

export interface PlanOptions {
  minutes: number | undefined
  timeScale: number
  faults: readonly FaultKind[]
  instances: number
}

export const HIT_RATIO_DELAY_MS = 5000
// What the service takes at its own pace whatever the time scale (its
// heartbeat, its breaker, a restart), and a loaded machine.
export const SLACK_MS = 8000

/**
 * Prometheus scrapes and evaluates every 5 s at real time, as the documented
 * times assume; compressed, no faster than every second: a scrape may take
 * no longer than the interval, and the service's /metrics takes its own time
 * on a busy machine. (The rules hold for intervals up to 15 s.)
 */
export const intervalSeconds = (timeScale: number) => Math.min(5, Math.max(1, 5 / timeScale))

export function plan (o: PlanOptions): Plan {
  const long = o.minutes !== undefined && o.minutes >= 30
  const scaled = (d: string) => Math.round(seconds(d) * 1000 / o.timeScale)
  const clearDeadlineMs = (alert: string) => scaled(CLEARS_WITHIN[alert] ?? DEFAULT_CLEAR) + SLACK_MS
  // any alert may come with any fault: each recovery outlasts the longest clear
  const longestClearMs = Math.max(...[DEFAULT_CLEAR, ...Object.values(CLEARS_WITHIN)].map(d => scaled(d) + SLACK_MS))
  const restartEveryMs = long ? 20_000 : 10_000
  const baseHoldMs = long ? 60_000 : 12_000
  const hitRatioWindowMs = long ? 10_000 : 5000
  const baselineMs = long ? 60_000 : 20_000
  const targetMs = o.minutes === undefined ? undefined : o.minutes * 60_000

  const step = (kind: FaultKind, pass: number): Step => {
    const expected = EXPECTED[kind].map(e => ({ ...e, deadlineMs: scaled(e.within) + SLACK_MS }))
    const fireDeadlineMs = Math.max(0, ...expected.map(e => e.deadlineMs))
    const holdMs = Math.max(kind === 'rolling-restart' ? o.instances * restartEveryMs : baseHoldMs, fireDeadlineMs + 3000)
    return {
      kind,
      pass,
      holdMs,
      recoverMs: Math.max(HIT_RATIO_DELAY_MS + hitRatioWindowMs, longestClearMs + 1000),
      target: (pass + (kind === 'instance-kill' ? 1 : 2)) % o.instances,
      expected
    }
  }

  const steps: Step[] = []
  let totalMs = baselineMs
  for (let pass = 0; ; pass++) {
    let added = false
    for (const kind of o.faults) {
      // processes restarted late would not live through the second half, where leaks are judged
      if (pass > 0 && RESTARTS.has(kind) && targetMs !== undefined && totalMs > targetMs / 2) continue
      const next = step(kind, pass)
      const length = next.holdMs + next.recoverMs
      if (pass > 0 && (targetMs === undefined || totalMs + length > targetMs)) continue
      steps.push(next)
      totalMs += length
      added = true
    }
    if (!added || targetMs === undefined) break
  }
  return { baselineMs, steps, restartEveryMs, clearDeadlineMs, hitRatioDelayMs: HIT_RATIO_DELAY_MS, hitRatioWindowMs, totalMs }
}
