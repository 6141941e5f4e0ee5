import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ProfileSummary } from './cpu-profile.ts'
import { renderMarkdown } from './markdown.ts'
import type { MemoryBreakdown } from './redis-memory.ts'
import type { L1Memory } from './l1-memory.ts'
import type { DeployResult } from './scenarios/deploy.ts'
import type { RevokeResult } from './scenarios/revoke.ts'
import type { SoakResult } from './scenarios/soak.ts'
import { summarize, type Round } from './summary.ts'
import { checkTargets } from './targets.ts'

// Scenarios left out (--only) are undefined.
export interface Results {
  meta: Record<string, string | number | boolean>
  rounds: Round[]
  soak: SoakResult | undefined
  memory: MemoryBreakdown | undefined
  l1Memory: L1Memory | undefined
  deploy: DeployResult | undefined
  revoke: RevokeResult | undefined
  profiles: ProfileSummary[]
}

// report.json keeps every round's raw numbers; report.md the medians.
export function writeReport (dir: string, results: Results): string {
  const summary = summarize(results.rounds, results.soak)
  const targets = checkTargets({ summary, soak: results.soak, memory: results.memory, l1Memory: results.l1Memory, deploy: results.deploy, revoke: results.revoke })
  const markdown = renderMarkdown({
    meta: results.meta,
    summary,
    mixedRounds: results.rounds.flatMap(r => r.mixed === undefined ? [] : [r.mixed]),
    soak: results.soak,
    memory: results.memory,
    l1Memory: results.l1Memory,
    deploy: results.deploy,
    revoke: results.revoke,
    targets,
    profiles: results.profiles
  })
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'report.json'), JSON.stringify({ ...results, summary, targets }, null, 2) + '\n')
  writeFileSync(join(dir, 'report.md'), markdown)
  return markdown
}
