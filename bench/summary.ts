import type { AtRate } from './scenarios/fixed-rate.ts'
import type { ForwardAuthRound } from './scenarios/forward-auth.ts'
import type { MixedResult } from './scenarios/mixed.ts'
import type { SoakResult } from './scenarios/soak.ts'
import type { ServiceWork } from './service-work.ts'
import type { Throughput } from './scenarios/throughput.ts'
import type { Runtime } from './runtime.ts'
import { median } from './stats.ts'

// One round's runs; a scenario left out by --only (or nginx missing) is absent.
export interface Round {
  ceiling?: Throughput
  /** L2: the service with L1 off, hit set in Redis */
  hit?: Throughput
  /** L1: the service with the hit set in its own memory */
  local?: Throughput
  /** as local, with the idle timeout and sliding expiry on */
  lifecycle?: Throughput
  miss?: Throughput
  naive?: Throughput
  express?: Throughput
  mixed?: MixedResult
  ceilingAtRate?: AtRate
  hitAtRate?: AtRate
  localAtRate?: AtRate
  forwardAuth?: ForwardAuthRound
}

type ClosedLoop = 'ceiling' | 'hit' | 'local' | 'lifecycle' | 'miss' | 'naive' | 'express'
type AtRateName = 'ceilingAtRate' | 'hitAtRate' | 'localAtRate'

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
  /** answers from the instance's own memory over validations */
  localShare: number | null
  queriesPerValidation: number | null
  floor: number | null
  runtime: RuntimeRow | undefined
}

/** A server's runtime over a scenario's runs: medians over rounds, maxima over all of them. */
export interface RuntimeRow {
  bytesPerRequest: number
  promotedPerRequest: number
  gcCount: number
  gcP99Ms: number
  gcMaxMs: number
  gcUsPerRequest: number
  loopP99Ms: number
  loopMaxMs: number
}

export interface RateRow {
  scenario: string
  achievedRps: number
  p50: number
  p99: number
  p999: number
  maxLateMs: number
  cpuUs: number
  /** the server's event-loop delay during the run, ms (medians over rounds; max: the largest) */
  loopP50Ms: number
  loopP99Ms: number
  loopMaxMs: number
  localShare: number | null
  runtime: RuntimeRow | undefined
}

/** Medians over rounds of ratios taken within each round (NaN when not run). */
export interface Ratios {
  localOverCeiling: number
  hitOverCeiling: number
  lifecycleOverCeiling: number
  missOverNaive: number
  localOverExpress: number
  lifecycleOverLocal: number
  hitP99OverCeilingP99AtRate: number
  localP99OverCeilingP99AtRate: number
  /** JS-heap bytes allocated per request, L1 hit over ceiling, at the fixed rate */
  localBytesOverCeilingAtRate: number
}

export interface Summary {
  rows: Row[]
  atRate: RateRow[]
  ratios: Ratios
  work: Partial<Record<'hit' | 'local' | 'lifecycle' | 'miss' | 'hitAtRate' | 'localAtRate', ServiceWork>>
  /** redis-server CPU per L2 hit validation, microseconds */
  redisCpuUsPerHit: number
  forwardAuth: ForwardAuthSummary | undefined
  /** epoch moves of the mixed instance's restarts, summed over rounds */
  mixedEpochMoves: number | undefined
}

const nan = Number.NaN

export function runtimeRow (runs: Array<Runtime | undefined>): RuntimeRow | undefined {
  const rs = runs.filter(r => r !== undefined)
  if (rs.length === 0) return undefined
  return {
    bytesPerRequest: median(rs.map(r => r.bytesPerRequest)),
    promotedPerRequest: median(rs.map(r => r.promotedPerRequest)),
    gcCount: median(rs.map(r => r.gcCount)),
    gcP99Ms: median(rs.map(r => r.gcP99Ms)),
    gcMaxMs: Math.max(...rs.map(r => r.gcMaxMs)),
    gcUsPerRequest: median(rs.map(r => r.gcUsPerRequest)),
    loopP99Ms: median(rs.map(r => r.loopP99Ms)),
    loopMaxMs: Math.max(...rs.map(r => r.loopMaxMs))
  }
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
    localShare: median(ws.map(w => w.localShare)),
    leaseLosses: ws.reduce((sum, w) => sum + w.leaseLosses, 0),
    redisCommandsPerValidation: medianRecord(ws.map(w => w.redisCommandsPerValidation)),
    postgresQueriesPerValidation: medianRecord(ws.map(w => w.postgresQueriesPerValidation)),
    postgresMsPerValidation: medianRecord(ws.map(w => w.postgresMsPerValidation)),
    activityRowsPerValidation: median(ws.map(w => w.activityRowsPerValidation)),
    gcMsPerValidation: median(ws.map(w => w.gcMsPerValidation)),
    eventLoop: {
      meanMs: median(ws.map(w => w.eventLoop.meanMs)),
      p50Ms: median(ws.map(w => w.eventLoop.p50Ms)),
      p99Ms: median(ws.map(w => w.eventLoop.p99Ms)),
      maxMs: Math.max(...ws.map(w => w.eventLoop.maxMs))
    }
  }
}

// the median over rounds of a/b, each taken within its round
function ratio (rounds: Round[], a: (r: Round) => number | undefined, b: (r: Round) => number | undefined): number {
  return median(rounds.map(r => {
    const [x, y] = [a(r), b(r)]
    return x === undefined || y === undefined ? nan : x / y
  }))
}

const NAMES: Record<ClosedLoop, string> = {
  ceiling: 'ceiling',
  hit: 'L2 hit (L1 off)',
  local: 'L1 hit',
  lifecycle: 'L1 hit, idle timeout + sliding expiry on',
  miss: 'miss',
  naive: 'naive',
  express: 'express-session + connect-redis'
}

function closedLoop (key: ClosedLoop, rounds: Round[]): Row | undefined {
  const runs = rounds.filter(r => r[key] !== undefined)
  if (runs.length === 0) return undefined
  const pick = (r: Round) => r[key]!
  const work = runs.some(r => pick(r).work !== undefined)
  return {
    scenario: NAMES[key],
    rps: median(runs.map(r => pick(r).rps)),
    p50: median(runs.map(r => pick(r).p50)),
    p99: median(runs.map(r => pick(r).p99)),
    p999: median(runs.map(r => pick(r).p999)),
    ratioToCeiling: ratio(rounds, r => r[key]?.rps, r => r.ceiling?.rps),
    cpuUs: median(runs.map(r => pick(r).cpuUs.server ?? nan)),
    postgresCpuUs: median(runs.map(r => pick(r).cpuUs.postgres ?? nan)),
    hitRatio: work && key !== 'miss' ? median(runs.map(r => pick(r).work?.hitRatio ?? nan)) : null,
    localShare: work && key !== 'miss' ? median(runs.map(r => pick(r).work?.localShare ?? nan)) : null,
    queriesPerValidation: key === 'miss' ? 1 : null,
    floor: null,
    runtime: runtimeRow(runs.map(r => pick(r).runtime))
  }
}

function atRate (name: string, key: AtRateName, rounds: Round[]): RateRow | undefined {
  const runs = rounds.flatMap(r => r[key] === undefined ? [] : [r[key]])
  if (runs.length === 0) return undefined
  return {
    scenario: name,
    achievedRps: median(runs.map(r => r.achievedRps)),
    p50: median(runs.map(r => r.p50)),
    p99: median(runs.map(r => r.p99)),
    p999: median(runs.map(r => r.p999)),
    maxLateMs: Math.max(...runs.map(r => r.maxLateMs)),
    cpuUs: median(runs.map(r => r.cpuUs.server ?? nan)),
    loopP50Ms: median(runs.map(r => r.eventLoop?.p50Ms ?? nan)),
    loopP99Ms: median(runs.map(r => r.eventLoop?.p99Ms ?? nan)),
    loopMaxMs: Math.max(...runs.map(r => r.eventLoop?.maxMs ?? nan)),
    localShare: runs.some(r => r.work !== undefined) ? median(runs.map(r => r.work?.localShare ?? nan)) : null,
    runtime: runtimeRow(runs.map(r => r.runtime))
  }
}

function mixedRow (rounds: Round[]): Row | undefined {
  const runs = rounds.flatMap(r => r.mixed === undefined ? [] : [r.mixed])
  if (runs.length === 0) return undefined
  const steady = runs.map(m => m.steady)
  return {
    scenario: 'mixed (steady state)',
    rps: median(steady.map(s => s.rps)),
    p50: nan,
    p99: median(steady.map(s => s.p99)),
    p999: nan,
    ratioToCeiling: ratio(rounds, r => r.mixed?.steady.rps, r => r.ceiling?.rps),
    cpuUs: nan,
    postgresCpuUs: nan,
    hitRatio: median(steady.map(s => s.hitRatio)),
    localShare: null,
    queriesPerValidation: median(steady.map(s => s.queriesPerValidation)),
    floor: median(steady.map(s => s.floor)),
    runtime: runtimeRow(runs.map(m => m.runtime))
  }
}

function soakRow (soak: SoakResult, rounds: Round[]): Row {
  const last = soak.windows.slice(-soak.compareWindows)
  return {
    scenario: `soak (last ${soak.compareSeconds} s)`,
    rps: soak.lastRps,
    p50: nan,
    p99: median(last.map(w => w.p99)),
    p999: nan,
    ratioToCeiling: soak.lastRps / median(rounds.map(r => r.ceiling?.rps ?? nan)),
    cpuUs: median(last.map(w => w.serviceCpuUs)),
    postgresCpuUs: median(last.map(w => w.postgresCpuUs)),
    hitRatio: null,
    localShare: null,
    queriesPerValidation: 1,
    floor: null,
    runtime: runtimeRow([soak.runtime])
  }
}

// Medians over rounds; every ratio is taken within a round first (its runs
// were minutes apart at most), then the median of those ratios is quoted.
export function summarize (rounds: Round[], soak: SoakResult | undefined): Summary {
  const closed = (['ceiling', 'local', 'lifecycle', 'hit', 'express', 'miss', 'naive'] as const).map(k => closedLoop(k, rounds))
  const rows = [...closed, mixedRow(rounds), soak === undefined ? undefined : soakRow(soak, rounds)].filter(r => r !== undefined)
  const rates = [atRate('ceiling', 'ceilingAtRate', rounds), atRate('L1 hit', 'localAtRate', rounds), atRate('L2 hit (L1 off)', 'hitAtRate', rounds)]
  const mixed = rounds.flatMap(r => r.mixed === undefined ? [] : [r.mixed.epochMoves])
  return {
    rows,
    atRate: rates.filter(r => r !== undefined),
    ratios: {
      localOverCeiling: ratio(rounds, r => r.local?.rps, r => r.ceiling?.rps),
      hitOverCeiling: ratio(rounds, r => r.hit?.rps, r => r.ceiling?.rps),
      lifecycleOverCeiling: ratio(rounds, r => r.lifecycle?.rps, r => r.ceiling?.rps),
      missOverNaive: ratio(rounds, r => r.miss?.rps, r => r.naive?.rps),
      localOverExpress: ratio(rounds, r => r.local?.rps, r => r.express?.rps),
      lifecycleOverLocal: ratio(rounds, r => r.lifecycle?.rps, r => r.local?.rps),
      hitP99OverCeilingP99AtRate: ratio(rounds, r => r.hitAtRate?.p99, r => r.ceilingAtRate?.p99),
      localP99OverCeilingP99AtRate: ratio(rounds, r => r.localAtRate?.p99, r => r.ceilingAtRate?.p99),
      localBytesOverCeilingAtRate: ratio(rounds, r => r.localAtRate?.runtime.bytesPerRequest, r => r.ceilingAtRate?.runtime.bytesPerRequest)
    },
    redisCpuUsPerHit: median(rounds.map(r => r.hit?.cpuUs.redis ?? nan)),
    forwardAuth: forwardAuthSummary(rounds),
    mixedEpochMoves: mixed.length === 0 ? undefined : mixed.reduce((a, b) => a + b, 0),
    work: Object.fromEntries((['hit', 'local', 'lifecycle', 'miss', 'hitAtRate', 'localAtRate'] as const)
      .map(k => [k, medianWork(rounds.map(r => r[k]?.work))])
      .filter(([, w]) => w !== undefined))
  }
}
