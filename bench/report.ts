import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ProfileSummary } from './cpu-profile.ts'
import { renderMarkdown } from './markdown.ts'
import type { MemoryBreakdown } from './redis-memory.ts'
import type { SoakResult } from './scenarios/soak.ts'
import { summarize, type Round } from './summary.ts'
import { checkTargets } from './targets.ts'

export interface Results {
  meta: Record<string, string | number | boolean>
  rounds: Round[]
  soak: SoakResult
  memory: MemoryBreakdown
  profiles: ProfileSummary[]
}

// report.json keeps every round's raw numbers; report.md the medians.
export function writeReport (dir: string, results: Results): string {
  const summary = summarize(results.rounds, results.soak)
  const targets = checkTargets(summary, results.soak, results.memory)
  const markdown = renderMarkdown({
    meta: results.meta,
    summary,
    mixedRounds: results.rounds.map(r => r.mixed),
    soak: results.soak,
    memory: results.memory,
    targets,
    profiles: results.profiles
  })
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'report.json'), JSON.stringify({ ...results, summary, targets }, null, 2) + '\n')
  writeFileSync(join(dir, 'report.md'), markdown)
  return markdown
}
