// Configuration is read once, from the environment, and fails fast: a bad value
// must stop the process with one line naming the variable, never half-start it.

export interface Config {
  port: number
  host: string
  databaseUrl: string | undefined
  databaseReadUrl: string | undefined
  databaseReadMaxLagMs: number
  databasePoolMax: number
  databaseConnectTimeoutSeconds: number
  databaseQueueMax: number
  databaseQueryTimeoutMs: number
  redisUrl: string | undefined
  redisClusterNodes: HostPort[]
  redisSentinels: HostPort[]
  redisSentinelMaster: string | undefined
  redisUsername: string | undefined
  redisPassword: string | undefined
  redisSentinelPassword: string | undefined
  redisTimeoutMs: number
  sessionCacheTtlSeconds: number
  sessionCachePrefix: string
  breakerThreshold: number
  breakerWindowMs: number
  breakerHalfOpenAfterMs: number
  serviceApiKeys: string[]
  metricsToken: string | undefined
  /** Requests per window per caller on the guarded routes; 0 turns the limit off. */
  rateLimitMax: number
  /** Failed validations (401) per window per caller; 0 turns the limit off. */
  rateLimitFailedMax: number
  rateLimitWindowMs: number
  activityResolutionSeconds: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
}

export interface HostPort { host: string, port: number }

export class ConfigError extends Error {
  constructor (readonly variable: string, reason: string) {
    super(`${variable}: ${reason}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

function raw (env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function integer (env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name)
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value)) throw new ConfigError(name, `must be a whole number, got "${value}"`)
  const n = Number(value)
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`)
  return n
}

function fraction (env: Env, name: string, fallback: number): number {
  const value = raw(env, name)
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || n >= 1) throw new ConfigError(name, `must be a number strictly between 0 and 1, got "${value}"`)
  return n
}

// The URL's text is never echoed back: it may carry a password.
function url (env: Env, name: string, protocols: string[]): string | undefined {
  const value = raw(env, name)
  if (value === undefined) return undefined
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw new ConfigError(name, 'is not a valid URL')
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.map(p => p + '//').join(' or ')}`)
  }
  if (parsed.hostname === '') throw new ConfigError(name, 'has no host')
  // the drivers decode them, and would throw a stack trace instead of this line
  try {
    decodeURIComponent(parsed.username + parsed.password)
  } catch {
    throw new ConfigError(name, 'has a user or password with a broken %-escape')
  }
  return value
}

// `host:port,host:port` (IPv6 hosts in brackets); never echoed back.
function hostPorts (env: Env, name: string): HostPort[] {
  const value = raw(env, name)
  if (value === undefined) return []
  return value.split(',').map(s => s.trim()).filter(s => s !== '').map(entry => {
    const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(entry)
    const port = match === null ? NaN : Number(match[2])
    if (match === null || port < 1 || port > 65535) throw new ConfigError(name, 'must be a comma-separated list of host:port')
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
  })
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export function loadConfig (env: Env): Config {
  const logLevel = raw(env, 'LOG_LEVEL') ?? 'info'
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`)
  }
  const prefix = env.SESSION_CACHE_PREFIX ?? 'session:'
  if (!/^[\x21-\x7e]{1,64}$/.test(prefix) || /[{}]/.test(prefix)) {
    throw new ConfigError('SESSION_CACHE_PREFIX', 'must be 1-64 visible ASCII characters without braces')
  }
  const keys = (raw(env, 'SERVICE_API_KEYS') ?? '').split(',').map(k => k.trim()).filter(k => k !== '')
  for (const key of keys) {
    if (key.length < 16) throw new ConfigError('SERVICE_API_KEYS', 'every key must be at least 16 characters')
  }
  const metricsToken = raw(env, 'METRICS_TOKEN')
  if (metricsToken !== undefined && metricsToken.length < 16) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters')
  }
  const port = integer(env, 'PORT', 3000, 0, 65535)
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:'])
  const redisClusterNodes = hostPorts(env, 'REDIS_CLUSTER_NODES')
  const redisSentinels = hostPorts(env, 'REDIS_SENTINELS')
  const redisSentinelMaster = raw(env, 'REDIS_SENTINEL_MASTER')
  const modes = [redisUrl !== undefined, redisClusterNodes.length > 0, redisSentinels.length > 0].filter(Boolean).length
  if (modes > 1) throw new ConfigError('REDIS_URL', 'set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS')
  if (redisSentinels.length > 0 && redisSentinelMaster === undefined) {
    throw new ConfigError('REDIS_SENTINEL_MASTER', 'is required with REDIS_SENTINELS')
  }
  return {
    port,
    host: raw(env, 'HOST') ?? '::',
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    databaseReadUrl: url(env, 'DATABASE_READ_URL', ['postgres:', 'postgresql:']),
    databaseReadMaxLagMs: integer(env, 'DATABASE_READ_MAX_LAG_MS', 1000, 0, 600_000),
    databasePoolMax: integer(env, 'DATABASE_POOL_MAX', 10, 1, 1000),
    databaseConnectTimeoutSeconds: integer(env, 'DATABASE_CONNECT_TIMEOUT_SECONDS', 5, 1, 120),
    databaseQueueMax: integer(env, 'DATABASE_QUEUE_MAX', 1000, 0, 1_000_000),
    databaseQueryTimeoutMs: integer(env, 'DATABASE_QUERY_TIMEOUT_MS', 2000, 10, 600_000),
    redisUrl,
    redisClusterNodes,
    redisSentinels,
    redisSentinelMaster,
    redisUsername: raw(env, 'REDIS_USERNAME'),
    redisPassword: raw(env, 'REDIS_PASSWORD'),
    redisSentinelPassword: raw(env, 'REDIS_SENTINEL_PASSWORD'),
    redisTimeoutMs: integer(env, 'REDIS_TIMEOUT_MS', 200, 1, 60_000),
    sessionCacheTtlSeconds: integer(env, 'SESSION_CACHE_TTL_SECONDS', 300, 1, 86_400),
    sessionCachePrefix: prefix,
    breakerThreshold: fraction(env, 'BREAKER_THRESHOLD', 0.5),
    breakerWindowMs: integer(env, 'BREAKER_WINDOW_MS', 10_000, 100, 3_600_000),
    breakerHalfOpenAfterMs: integer(env, 'BREAKER_HALF_OPEN_AFTER_MS', 30_000, 10, 3_600_000),
    serviceApiKeys: keys,
    metricsToken,
    rateLimitMax: integer(env, 'RATE_LIMIT_MAX', 6000, 0, 10_000_000),
    rateLimitFailedMax: integer(env, 'RATE_LIMIT_FAILED_MAX', 600, 0, 10_000_000),
    rateLimitWindowMs: integer(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1000, 3_600_000),
    activityResolutionSeconds: integer(env, 'ACTIVITY_RESOLUTION_SECONDS', 60, 1, 86_400),
    logLevel: logLevel as Config['logLevel']
  }
}
