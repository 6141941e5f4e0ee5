// Stalls of the machine itself, seen from outside the service: the soak's
// own timers firing late, or its own query to Postgres (straight, no proxy)
// taking long while no fault is on. On a machine shared with other work every
// process can stand still for a second or two; the service's calls then time
// out as if Redis or Postgres had failed, and it answers as it must (503).
// Such answers are counted apart, not held against it; the table says how
// many stalls there were.
import type postgres from 'postgres'
import type { Timeline } from './timeline.ts'

const TICK_MS = 100
/** a timer this late, or a query this slow, is a stall */
const LATE_MS = 500
const SLOW_QUERY_MS = 1000
const PROBE_EVERY_MS = 250

export function watchStalls (sql: postgres.Sql, timeline: Timeline, now: () => number): { stop(): Promise<void> } {
  const state = { running: true }
  let last = now()
  const ticker = setInterval(() => {
    const at = now()
    if (at - last > TICK_MS + LATE_MS) timeline.stalls.push({ from: last, to: at, what: `timers ${Math.round(at - last - TICK_MS)} ms late` })
    last = at
  }, TICK_MS)
  const probe = (async () => {
    while (state.running) {
      const from = now()
      const ok = await sql`SELECT 1`.then(() => true, () => false)
      const to = now()
      if (ok && to - from > SLOW_QUERY_MS) timeline.stalls.push({ from, to, what: `SELECT 1 took ${Math.round(to - from)} ms` })
      await new Promise(resolve => setTimeout(resolve, PROBE_EVERY_MS))
    }
  })()
  return {
    async stop () {
      state.running = false
      clearInterval(ticker)
      await probe
    }
  }
}
