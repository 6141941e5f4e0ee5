// The Redis commands this service sends, and the ACL line that grants only
// those, on only its key prefix. The doctor, the ACL test and docs/security.md read it here.
import { createHash } from 'node:crypto'

export interface AclCommand {
  /** The ACL name: a command, or `command|subcommand`. */
  name: string
  /** What the service sends it for. */
  usedFor: string
  /**
   * A call that changes nothing the service relies on, for the doctor to try:
   * `key` holds a string under the prefix with a short TTL, so type errors
   * answer most of them (an ACL refusal comes first, whatever the arguments).
   */
  probe(key: string): string[]
  /** Its probe would create `key` were it absent: tried only once `key` exists. */
  needsKey?: true
}

const SCRIPT = 'return 1'
const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex')

// Script bodies call what is listed after EVAL; ACL checks those calls too.
// To add a command: one entry here (and the doctor tries it, the ACL test
// requires it, docs/security.md's line quotes it).
export const REDIS_COMMANDS: readonly AclCommand[] = [
  { name: 'info', usedFor: "ioredis' ready check, the server identity check after each connect, /healthz/redis", probe: () => ['INFO', 'server'] },
  { name: 'zrange', usedFor: "a user's cached sessions (revoke-all)", probe: k => ['ZRANGE', k, '0', '-1'] },
  { name: 'zrem', usedFor: "dropping revoked sessions from a user's index", probe: k => ['ZREM', k, 'doctor'] },
  { name: 'del', usedFor: 'dropping an entry, the fill and invalidation scripts', probe: k => ['DEL', `${k}:absent`] },
  { name: 'evalsha', usedFor: 'every script (ioredis sends EVALSHA first)', probe: () => ['EVALSHA', SCRIPT_SHA, '0'] },
  { name: 'eval', usedFor: 'every script, when Redis does not know it yet', probe: () => ['EVAL', SCRIPT, '0'] },
  { name: 'time', usedFor: "the fill and index scripts (Redis' own clock)", probe: () => ['TIME'] },
  { name: 'exists', usedFor: 'the fill script (tombstone check)', probe: k => ['EXISTS', k] },
  { name: 'set', usedFor: 'entries (the fill script), tombstones (invalidation script), the health probe, the watermark claim script, the warm-up claim', probe: k => ['SET', k, 'doctor', 'PX', '30000'] },
  { name: 'zremrangebyscore', usedFor: 'the index script (pruning)', probe: k => ['ZREMRANGEBYSCORE', k, '-inf', '-inf'] },
  { name: 'zadd', usedFor: 'the index script', probe: k => ['ZADD', k, 'XX', '0', 'doctor'] },
  { name: 'ping', usedFor: '/healthz/redis, the heartbeat (one a second) and the open circuit\'s probe', probe: () => ['PING'] },
  { name: 'get', usedFor: 'cache reads, /healthz/redis, the rate limiter script, the watermark (read at catch-up, and in its claim script)', probe: k => ['GET', k] },
  { name: 'dbsize', usedFor: '/healthz/redis (totalKeys)', probe: () => ['DBSIZE'] },
  { name: 'incrby', usedFor: 'the rate limiter script', probe: k => ['INCRBY', k, '0'], needsKey: true },
  { name: 'pttl', usedFor: 'the fill and index scripts (the user index), the rate limiter script', probe: k => ['PTTL', k] },
  { name: 'pexpire', usedFor: 'the fill and index scripts (the user index), the rate limiter script, the watermark claim script', probe: k => ['PEXPIRE', k, '30000'] }
]

export interface RedisTopology {
  cluster: boolean
  /** The database REDIS_URL selects (0 unless its path says otherwise). */
  database: number
}

const SINGLE: RedisTopology = { cluster: false, database: 0 }

// What only some deployments need.
export function requiredCommands (topology: RedisTopology = SINGLE): AclCommand[] {
  const extra: AclCommand[] = []
  if (topology.database !== 0) {
    extra.push({ name: 'select', usedFor: 'the database REDIS_URL names, at each connect', probe: () => ['SELECT', String(topology.database)] })
  }
  if (topology.cluster) {
    extra.push(
      { name: 'cluster|slots', usedFor: "ioredis' slot map", probe: () => ['CLUSTER', 'SLOTS'] },
      { name: 'cluster|info', usedFor: "ioredis' cluster ready check", probe: () => ['CLUSTER', 'INFO'] },
      // refused, ioredis carries on; granted, the ACL log stays quiet
      { name: 'client|setname', usedFor: 'ioredis names its slot-refresh connections', probe: () => ['CLIENT', 'SETNAME', 'session-validator-doctor'] },
      // ioredis sends it on each replica connection it opens (slot refresh
      // samples any node), although the service reads from masters only
      { name: 'readonly', usedFor: "ioredis' replica connections", probe: () => ['READONLY'] }
    )
  }
  return [...REDIS_COMMANDS, ...extra]
}

// `*`, `?`, `[` and `\` in a prefix are glob characters to Redis.
function keyPattern (prefix: string): string {
  return `~${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
}

/** The rules of ACL SETUSER <user> ..., each one argument. */
export function aclRules (prefix: string, password: string, commands: readonly string[]): string[] {
  return ['on', `>${password}`, 'resetkeys', keyPattern(prefix), 'resetchannels', '-@all', ...commands.map(c => `+${c}`)]
}

export function aclSetUserLine (prefix: string, opts: { user?: string, password?: string, topology?: RedisTopology } = {}): string {
  const commands = requiredCommands(opts.topology).map(c => c.name)
  return ['ACL', 'SETUSER', opts.user ?? 'session-validator', ...aclRules(prefix, opts.password ?? 'PASSWORD', commands)].join(' ')
}

// Path first, then ?db=, as ioredis reads a URL.
export function topologyOf (config: { redisUrl: string | undefined, redisClusterNodes: readonly unknown[] }): RedisTopology {
  if (config.redisClusterNodes.length > 0) return { cluster: true, database: 0 }
  if (config.redisUrl === undefined) return SINGLE
  const url = new URL(config.redisUrl)
  const db = url.pathname.length > 1 ? url.pathname.slice(1) : url.searchParams.get('db') ?? '0'
  return { cluster: false, database: Number(db) || 0 }
}
