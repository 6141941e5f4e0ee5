// The run's table, fault by fault (Markdown, so that it reads in a terminal
// and pastes into docs/soak.md), and the verdicts under it.
import { answered, type Counts } from './tally.ts'

export interface Row {
  at: number
  title: string
  counts: Counts
  wrong: number
  /** hit ratio of cached sessions judged after the fault, with how many were counted */
  hitRatio: { ratio: number, counted: number } | undefined
  /** machine stalls seen in the window */
  stalls: number
  epochMoves: number
  alerts: string[]
  ok: boolean
}

const clock = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000))
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
}
const n = (v: number) => v.toLocaleString('en')

export function table (rows: Row[]): string {
  const lines = [
    '| # | at | fault | answers | wrong | 503 | epoch moves | hit ratio after | stalls | alerts seen | |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
  ]
  rows.forEach((r, i) => {
    const hit = r.hitRatio === undefined ? '–' : r.hitRatio.counted === 0 ? 'none counted' : `${r.hitRatio.ratio.toFixed(3)} (${n(r.hitRatio.counted)})`
    lines.push(`| ${i} | ${clock(r.at)} | ${r.title} | ${n(answered(r.counts))} | ${n(r.wrong)} | ${n(r.counts.statuses.get(503) ?? 0)} | ${n(r.epochMoves)} | ${hit} | ${r.stalls} | ${r.alerts.length === 0 ? '–' : r.alerts.join('; ')} | ${r.ok ? 'ok' : 'FAIL'} |`)
  })
  return lines.join('\n')
}

export const mb = (bytes: number) => Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(1)} MB` : '–'
export { clock }
