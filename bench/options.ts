import { parseArgs } from 'node:util'

// Every scenario --only may name; the ceiling runs with any closed-loop or
// fixed-rate one, since their figures are ratios to it.
export const SCENARIOS = ['hit', 'local', 'lifecycle', 'miss', 'naive', 'express', 'mixed', 'rate', 'forward-auth', 'soak', 'deploy', 'revoke'] as const
export type Scenario = typeof SCENARIOS[number]

export interface Options {
  quick: boolean
  /** the scenarios to run: all of them unless --only named some */
  only: ReadonlySet<Scenario>
  partial: boolean
  sessions: number
  sessionsPerUser: number
  hitSet: number
  rounds: number
  seconds: number
  warmupSeconds: number
  connections: number
  threads: number
  zipfExponent: number
  mixedWindows: number
  mixedWindowSeconds: number
  soakSeconds: number
  soakWindowSeconds: number
  fixedRate: number
  fixedRateSeconds: number
  deploySeconds: number
  restartEverySeconds: number
  revokes: number
  profile: boolean
  /** extra node options for every server (--node-flags), e.g. V8 heap settings being weighed */
  nodeFlags: string[]
  /** another checkout whose built dist/ is measured instead of this one's (--build) */
  build: string | undefined
  requestLimit: boolean
  adminUrl: string
}

const HELP = `npm run bench [-- options]
  --quick                 20,000 sessions, short runs (for development)
  --only A,B              run only these scenarios (${SCENARIOS.join(', ')}); the
                          ceiling runs whenever a ratio to it is needed; --rounds may then be 1
  --sessions N            sessions to seed (1,000,000)
  --sessions-per-user N   sessions sharing one user (2)
  --hit-set N             sessions cached for the hit scenarios (100,000)
  --rounds N              rounds of the rotated scenarios (3, at least 3)
  --seconds N             length of each measured run (10)
  --connections N         wrk connections (64)
  --threads N             wrk threads (1)
  --zipf S                Zipf exponent of the mixed scenario (0.99)
  --soak-seconds N        length of the soak (300)
  --rate N                fixed rate for the p99 comparison (5000)
  --deploy-seconds N      length of the deploy scenario (120; 40 with --quick)
  --restart-every N       seconds between restarts in the deploy scenario (20)
  --revokes N             revokes timed in the revoke scenario (1000; 200 with --quick)
  --profile               run the servers under --cpu-prof and summarize where the time goes
  --node-flags="F ..."    extra node options for every server alike (e.g. --node-flags=--max-semi-space-size=64);
                          the service's image sets its own in the Dockerfile (README, Benchmark)
  --build DIR             measure the dist/ built in another checkout (an earlier commit, say) with
                          this bench; its figures then compare with this one's, ratios to the ceiling first
  --rate-limit            turn the request limit on (RATE_LIMIT_MAX out of reach), to measure its cost;
                          by default the service runs with its own defaults (request limit off)
Environment: BENCH_DATABASE_URL, an admin URL of the Postgres to create the bench database on.`

export function positive (value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${value}"`)
  return n
}

function scenarios (value: string | undefined): Set<Scenario> {
  if (value === undefined) return new Set(SCENARIOS)
  const names = value.split(',').map(s => s.trim()).filter(s => s !== '')
  for (const name of names) {
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`--only: unknown scenario "${name}" (one of ${SCENARIOS.join(', ')})`)
  }
  if (names.length === 0) throw new Error('--only needs at least one scenario')
  return new Set(names as Scenario[])
}

export function parseOptions (argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'rate-limit': { type: 'boolean', default: false },
      'node-flags': { type: 'string' },
      build: { type: 'string' },
      only: { type: 'string' },
      sessions: { type: 'string' },
      'sessions-per-user': { type: 'string' },
      'hit-set': { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      zipf: { type: 'string' },
      'soak-seconds': { type: 'string' },
      rate: { type: 'string' },
      'deploy-seconds': { type: 'string' },
      'restart-every': { type: 'string' },
      revokes: { type: 'string' }
    }
  })
  if (values.help) {
    console.log(HELP)
    return undefined
  }
  const quick = values.quick
  const only = scenarios(values.only)
  const partial = values.only !== undefined
  const sessions = Math.floor(positive(values.sessions, 'sessions', quick ? 20_000 : 1_000_000))
  const seconds = positive(values.seconds, 'seconds', quick ? 3 : 10)
  const soakSeconds = positive(values['soak-seconds'], 'soak-seconds', quick ? 30 : 300)
  const rounds = Math.floor(positive(values.rounds, 'rounds', partial ? 1 : 3))
  if (rounds < 3 && !partial) throw new Error('--rounds must be at least 3: a median of fewer says little (with --only, any number)')
  const restartEverySeconds = positive(values['restart-every'], 'restart-every', 20)
  return {
    quick,
    only,
    partial,
    sessions,
    sessionsPerUser: Math.floor(positive(values['sessions-per-user'], 'sessions-per-user', 2)),
    hitSet: Math.min(sessions, Math.floor(positive(values['hit-set'], 'hit-set', quick ? 5_000 : 100_000))),
    rounds,
    seconds,
    warmupSeconds: quick ? 1 : 2,
    connections: Math.floor(positive(values.connections, 'connections', 64)),
    threads: Math.floor(positive(values.threads, 'threads', 1)),
    zipfExponent: positive(values.zipf, 'zipf', 0.99),
    mixedWindows: quick ? 4 : 8,
    mixedWindowSeconds: seconds,
    soakSeconds,
    soakWindowSeconds: quick ? 5 : 10,
    fixedRate: positive(values.rate, 'rate', 5000),
    fixedRateSeconds: seconds,
    deploySeconds: Math.max(restartEverySeconds, positive(values['deploy-seconds'], 'deploy-seconds', quick ? 40 : 120)),
    restartEverySeconds,
    revokes: Math.floor(positive(values.revokes, 'revokes', quick ? 200 : 1000)),
    profile: values.profile,
    nodeFlags: (values['node-flags'] ?? '').split(' ').filter(f => f !== ''),
    build: values.build,
    requestLimit: values['rate-limit'],
    adminUrl: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  }
}
