import type { MemoryBreakdown } from './redis-memory.ts'
import type { SoakResult } from './scenarios/soak.ts'
import type { Summary } from './summary.ts'

export interface Target {
  name: string
  measured: number
  limit: number
  atLeast: boolean
  pass: boolean
  /** context a reader needs to judge a miss */
  note: string
}

function target (name: string, measured: number, limit: number, atLeast: boolean, note = ''): Target {
  const pass = Number.isFinite(measured) && (atLeast ? measured >= limit : measured <= limit)
  return { name, measured, limit, atLeast, pass, note }
}

function encodings (memory: MemoryBreakdown): string {
  return memory.samples.map(s => `${s.kind}: ${s.bytesEach} B each, ${Object.keys(s.encodings).join('/')}`).join('; ')
}

// The targets of issue 6. A miss is reported, never an error: the bench's
// exit code says whether it ran, not whether the service is fast enough.
export function checkTargets (summary: Summary, soak: SoakResult, memory: MemoryBreakdown): Target[] {
  const mixed = summary.rows.find(r => r.scenario.startsWith('mixed'))
  return [
    target('hit / ceiling (req/s)', summary.hitOverCeiling, 0.45, true),
    target('miss / naive (req/s)', summary.missOverNaive, 1.3, true),
    target('soak: last minute / first minute (req/s)', soak.ratio, 0.9, true),
    target('hit p99 / ceiling p99 at fixed rate', summary.hitP99OverCeilingP99AtRate, 1.5, false),
    target('Redis bytes per cached session', memory.bytesPerSession, 700, false, encodings(memory)),
    target('mixed steady state: Postgres queries per validation', mixed?.queriesPerValidation ?? Number.NaN, 0.01, false,
      `floor ${mixed?.floor?.toFixed(4) ?? '?'}: sessions first seen in that window, which no cache can answer`)
  ]
}
