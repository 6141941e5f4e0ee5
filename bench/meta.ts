import { execFileSync } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import type { Options } from './options.ts'

function git (args: string[]): string {
  try {
    // --no-optional-locks: reading must not touch the index others are using
    return execFileSync('git', ['--no-optional-locks', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}

// The code measured, read when the build is copied aside.
export function buildIdentity (): string {
  const dirty = git(['status', '--porcelain', '--', 'src', 'migrations']) !== ''
  return `${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ' (with uncommitted changes in src/ or migrations/)' : ''}`
}

// What a reader needs to judge the numbers: the machine, its load, the code.
export function describeRun (o: Options, startedAt: Date, database: string, build: string): Record<string, string | number | boolean> {
  return {
    started: startedAt.toISOString(),
    minutes: Number(((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)),
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    'load average at the end': loadavg().map(l => l.toFixed(2)).join(' '),
    commit: build,
    database,
    sessions: o.sessions,
    'sessions per user': o.sessionsPerUser,
    'hit set': o.hitSet,
    rounds: o.rounds,
    'seconds per run': o.seconds,
    'closed-loop generator': `wrk ${o.threads} thread(s), ${o.connections} connections, Lua-chosen tokens (one C thread on epoll: leaves the service more CPU than a Node generator such as autocannon)`,
    'fixed-rate generator': 'bench/fixed-rate.ts, open loop in Node (Debian has wrk, not wrk2)',
    'fixed rate': o.fixedRate,
    'Zipf exponent (mixed)': o.zipfExponent,
    'soak seconds': o.soakSeconds,
    'deploy seconds / restart every': `${o.deploySeconds} / ${o.restartEverySeconds}`,
    revokes: o.revokes,
    quick: o.quick,
    scenarios: o.partial ? [...o.only].join(', ') : 'all',
    'request limit': o.requestLimit
      ? 'on, out of reach (RATE_LIMIT_MAX=10000000)'
      : 'the service\'s default: off (RATE_LIMIT_MAX=0); failed-lookup budgets at their defaults (no seeded token fails)',
    'L1 hit instances': 'LOCAL_CACHE_MAX_ENTRIES and LOCAL_CACHE_MAX_BYTES at their defaults (100,000 and 64 MiB) up to a hit set of 100,000 (above: the hit set, 1 KiB × hit set), LOCAL_CACHE_TTL_SECONDS=3600, SESSION_CACHE_TTL_SECONDS=3600',
    'cpu profiling': o.profile,
    'node flags (every server)': o.nodeFlags.length === 0 ? 'none beyond the runtime probe (--import bench/runtime-probe.ts)' : o.nodeFlags.join(' ')
  }
}
