import type { AtRate } from './scenarios/fixed-rate.ts'
import type { ForwardAuthRound } from './scenarios/forward-auth.ts'
import type { MixedResult } from './scenarios/mixed.ts'
import type { SoakResult } from './scenarios/soak.ts'
import type { ServiceWork } from './service-work.ts'
import type { Throughput } from './scenarios/throughput.ts'
import { median } from './stats.ts'

export interface Round {
  ceiling: Throughput
  hit: Throughput
  miss: Throughput
  naive: Throughput
  mixed: MixedResult
  ceilingAtRate: AtRate
  hitAtRate: AtRate
  /** absent when nginx is not installed */
  forwardAuth?: ForwardAuthRound
}

export interface ForwardAuthSummary {
  directRps: number
  throughRps: number
  /** median over rounds of this round's forward-auth req/s / this round's direct req/s */
  ratio: number
  directP99: number
  throughP99: number
}

export interface Row {
  scenario: string
  rps: number
  p50: number
  p99: number
  p999: number
  /** median over rounds of this round's rps / this round's ceiling rps */
  ratioToCeiling: number
  /** CPU per request, microseconds: the server process', Postgres' (its backends for the bench database) */
  cpuUs: number
  postgresCpuUs: number
  hitRatio: number | null
  queriesPerValidation: number | null
  floor: number | null
}

export interface RateRow {
  scenario: string
  achievedRps: number
  p50: number
  p99: number
  p999: number
  maxLateMs: number
  cpuUs: number
}

export interface Summary {
  rows: Row[]
  atRate: RateRow[]
  hitOverCeiling: number
  missOverNaive: number
  hitP99OverCeilingP99AtRate: number
  work: Record<'hit' | 'miss' | 'hitAtRate', ServiceWork | undefined>
  /** redis-server CPU per hit validation, microseconds */
  redisCpuUsPerHit: number
  forwardAuth: ForwardAuthSummary | undefined
}

function forwardAuthSummary (rounds: Round[]): ForwardAuthSummary | undefined {
  const runs = rounds.flatMap(r => r.forwardAuth === undefined ? [] : [r.forwardAuth])
  if (runs.length === 0) return undefined
  return {
    directRps: median(runs.map(r => r.direct.rps)),
    throughRps: median(runs.map(r => r.through.rps)),
    ratio: median(runs.map(r => r.through.rps / r.direct.rps)),
    directP99: median(runs.map(r => r.direct.p99)),
    throughP99: median(runs.map(r => r.through.p99))
  }
}

const nan = Number.NaN

function medianRecord (records: Array<Record<string, number>>): Record<string, number> {
  const keys = new Set(records.flatMap(r => Object.keys(r)))
  return Object.fromEntries([...keys].sort().map(k => [k, median(records.map(r => r[k] ?? 0))]))
}

function medianWork (works: Array<ServiceWork | undefined>): ServiceWork | undefined {
  const ws = works.filter(w => w !== undefined)
  if (ws.length === 0) return undefined
  return {
    validations: median(ws.map(w => w.validations)),
    hitRatio: median(ws.map(w => w.hitRatio)),
    redisCommandsPerValidation: medianRecord(ws.map(w => w.redisCommandsPerValidation)),
    postgresQueriesPerValidation: medianRecord(ws.map(w => w.postgresQueriesPerValidation)),
    postgresMsPerValidation: medianRecord(ws.map(w => w.postgresMsPerValidation)),
    activityRowsPerValidation: median(ws.map(w => w.activityRowsPerValidation)),
    gcMsPerValidation: median(ws.map(w => w.gcMsPerValidation)),
    eventLoopLagMaxMs: median(ws.map(w => w.eventLoopLagMaxMs))
  }
}

function closedLoop (name: string, rounds: Round[], pick: (r: Round) => Throughput): Row {
  return {
    scenario: name,
    rps: median(rounds.map(r => pick(r).rps)),
    p50: median(rounds.map(r => pick(r).p50)),
    p99: median(rounds.map(r => pick(r).p99)),
    p999: median(rounds.map(r => pick(r).p999)),
    ratioToCeiling: median(rounds.map(r => pick(r).rps / r.ceiling.rps)),
    cpuUs: median(rounds.map(r => pick(r).cpuUs.server ?? nan)),
    postgresCpuUs: median(rounds.map(r => pick(r).cpuUs.postgres ?? nan)),
    hitRatio: null,
    queriesPerValidation: null,
    floor: null
  }
}

function atRate (name: string, rounds: Round[], pick: (r: Round) => AtRate): RateRow {
  return {
    scenario: name,
    achievedRps: median(rounds.map(r => pick(r).achievedRps)),
    p50: median(rounds.map(r => pick(r).p50)),
    p99: median(rounds.map(r => pick(r).p99)),
    p999: median(rounds.map(r => pick(r).p999)),
    maxLateMs: Math.max(...rounds.map(r => pick(r).maxLateMs)),
    cpuUs: median(rounds.map(r => pick(r).cpuUs.server ?? nan))
  }
}

// Medians over rounds; every ratio is taken within a round first (its runs
// were minutes apart at most), then the median of those ratios is quoted.
export function summarize (rounds: Round[], soak: SoakResult): Summary {
  const steady = rounds.map(r => r.mixed.steady)
  const mixed: Row = {
    scenario: 'mixed (steady state)',
    rps: median(steady.map(s => s.rps)),
    p50: nan,
    p99: median(steady.map(s => s.p99)),
    p999: nan,
    ratioToCeiling: median(rounds.map(r => r.mixed.steady.rps / r.ceiling.rps)),
    cpuUs: nan,
    postgresCpuUs: nan,
    hitRatio: median(steady.map(s => s.hitRatio)),
    queriesPerValidation: median(steady.map(s => s.queriesPerValidation)),
    floor: median(steady.map(s => s.floor))
  }
  const miss = closedLoop('miss', rounds, r => r.miss)
  miss.queriesPerValidation = 1
  const hit = closedLoop('hit', rounds, r => r.hit)
  hit.hitRatio = median(rounds.map(r => r.hit.work?.hitRatio ?? nan))
  const soakLast = soak.windows.slice(-soak.compareWindows)
  const soakRow: Row = {
    scenario: `soak (last ${soak.compareSeconds} s)`,
    rps: soak.lastRps,
    p50: nan,
    p99: median(soakLast.map(w => w.p99)),
    p999: nan,
    ratioToCeiling: soak.lastRps / median(rounds.map(r => r.ceiling.rps)),
    cpuUs: median(soak.windows.slice(-soak.compareWindows).map(w => w.serviceCpuUs)),
    postgresCpuUs: median(soak.windows.slice(-soak.compareWindows).map(w => w.postgresCpuUs)),
    hitRatio: null,
    queriesPerValidation: 1,
    floor: null
  }
  return {
    rows: [closedLoop('ceiling', rounds, r => r.ceiling), hit, miss, closedLoop('naive', rounds, r => r.naive), mixed, soakRow],
    atRate: [atRate('ceiling', rounds, r => r.ceilingAtRate), atRate('hit', rounds, r => r.hitAtRate)],
    hitOverCeiling: median(rounds.map(r => r.hit.rps / r.ceiling.rps)),
    missOverNaive: median(rounds.map(r => r.miss.rps / r.naive.rps)),
    hitP99OverCeilingP99AtRate: median(rounds.map(r => r.hitAtRate.p99 / r.ceilingAtRate.p99)),
    redisCpuUsPerHit: median(rounds.map(r => r.hit.cpuUs.redis ?? nan)),
    forwardAuth: forwardAuthSummary(rounds),
    work: {
      hit: medianWork(rounds.map(r => r.hit.work)),
      miss: medianWork(rounds.map(r => r.miss.work)),
      hitAtRate: medianWork(rounds.map(r => r.hitAtRate.work))
    }
  }
}
