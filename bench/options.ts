import { parseArgs } from 'node:util'

export interface Options {
  quick: boolean
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
  profile: boolean
  rateLimit: boolean
  adminUrl: string
}

const HELP = `npm run bench [-- options]
  --quick                 20,000 sessions, short runs (for development)
  --sessions N            sessions to seed (1,000,000)
  --sessions-per-user N   sessions sharing one user (2)
  --hit-set N             sessions cached for the hit scenario (100,000)
  --rounds N              rounds of the rotated scenarios (3, at least 3)
  --seconds N             length of each measured run (10)
  --connections N         wrk connections (64)
  --threads N             wrk threads (1)
  --zipf S                Zipf exponent of the mixed scenario (0.99)
  --soak-seconds N        length of the soak (300)
  --rate N                fixed rate for the p99 comparison (5000)
  --profile               run the servers under --cpu-prof and summarize where the time goes
  --no-rate-limit         turn the service's rate limiter off (default: on, limits too high to trigger)
Environment: BENCH_DATABASE_URL, an admin URL of the Postgres to create the bench database on.`

function positive (value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${value}"`)
  return n
}

export function parseOptions (argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'no-rate-limit': { type: 'boolean', default: false },
      sessions: { type: 'string' },
      'sessions-per-user': { type: 'string' },
      'hit-set': { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      zipf: { type: 'string' },
      'soak-seconds': { type: 'string' },
      rate: { type: 'string' }
    }
  })
  if (values.help) {
    console.log(HELP)
    return undefined
  }
  const quick = values.quick
  const sessions = Math.floor(positive(values.sessions, 'sessions', quick ? 20_000 : 1_000_000))
  const seconds = positive(values.seconds, 'seconds', quick ? 3 : 10)
  const soakSeconds = positive(values['soak-seconds'], 'soak-seconds', quick ? 30 : 300)
  const rounds = Math.floor(positive(values.rounds, 'rounds', 3))
  if (rounds < 3) throw new Error('--rounds must be at least 3: a median of fewer says little')
  return {
    quick,
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
    profile: values.profile,
    rateLimit: !values['no-rate-limit'],
    adminUrl: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  }
}
