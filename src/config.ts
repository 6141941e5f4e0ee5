// Configuration is read once, from the environment, and fails fast: a bad value
// must stop the process with one line naming the variable, never half-start it.
import { isIP } from 'node:net'
import { ConfigError } from './errors.js'

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
  /** Connecting to Redis (and the limiter's first sync): five calls' worth, at least a second. */
  redisConnectTimeoutMs: number
  sessionCacheTtlSeconds: number
  /** How long past its cache TTL an entry stays in Redis, answered only while Postgres cannot be reached (0: never). */
  sessionCacheStaleSeconds: number
  sessionCachePrefix: string
  breakerThreshold: number
  breakerWindowMs: number
  breakerHalfOpenAfterMs: number
  serviceApiKeys: string[]
  metricsToken: string | undefined
  /** Requests per window per caller on the guarded routes; 0 (the default) turns the limit off. */
  rateLimitMax: number
  /** Lookups reaching Postgres that find no valid session, per window per end-user address; 0: no limit. */
  rateLimitFailedMax: number
  /** The same per caller, whatever the end user; 0: no limit. */
  rateLimitCallerFailedMax: number
  /** Addresses and CIDRs whose X-Real-IP / X-Forwarded-For is believed. */
  trustedProxies: string[]
  rateLimitWindowMs: number
  activityResolutionSeconds: number
  /** A session unused for this long is answered 401 idle; 0 (the default) turns it off. */
  sessionIdleTimeoutSeconds: number
  /** While used, expires_at moves to now + this (written behind); 0 (the default) turns it off. */
  sessionSlidingSeconds: number
  /** Sliding never moves expires_at past created_at + this. */
  sessionAbsoluteMaxSeconds: number
  /** Sessions this instance keeps in its own memory; 0 turns the memory cache off. */
  localCacheMaxEntries: number
  localCacheMaxBytes: number
  localCacheTtlSeconds: number
  /** How long a proof of delivery lets an instance answer from memory; also the longest a revoke waits. */
  localCacheLeaseMs: number
  changeLogRetentionSeconds: number
  /** Sessions a warm-up after an epoch move writes at most; 0 turns warming off. */
  cacheWarmSessions: number
  cacheWarmRate: number
  /** Extra columns answered with each session (SESSION_EXTRA_FIELDS, USER_EXTRA_FIELDS). */
  extraFields: ExtraFields
  forwardAuth: ForwardAuthConfig
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
}

export interface HostPort { host: string, port: number }

// Extra columns an operator declares (SESSION_EXTRA_FIELDS, USER_EXTRA_FIELDS);
// src/sessions/extra-fields.ts checks, reads and answers them.
export const EXTRA_TYPES = ['text', 'uuid', 'integer', 'bigint', 'number', 'boolean', 'timestamp', 'json'] as const
export type ExtraType = typeof EXTRA_TYPES[number]

export interface ExtraField {
  table: 'session' | 'user'
  column: string
  /** camelCase, as answered: active_org_id → activeOrgId */
  name: string
  type: ExtraType
}

export interface ExtraFields {
  session: ExtraField[]
  user: ExtraField[]
}

export const NO_EXTRA_FIELDS: ExtraFields = { session: [], user: [] }

const camelCase = (column: string) => column.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())

export interface ForwardAuthConfig {
  /** The cookie holding the session token; unset: only Authorization: Bearer is read. */
  cookie: string | undefined
  /** Sent with every 401 as a hint a proxy can turn into a browser redirect. */
  loginUrl: string | undefined
  /** Names of the identity headers of a 200. */
  headers: { user: string, email: string, username: string, sessionId: string }
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

// RFC 9110 field names and RFC 6265 cookie names are both `token`s.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// What the forward-auth answer sets itself, or what framing owns.
const RESERVED_HEADERS = new Set(['cache-control', 'connection', 'content-length', 'content-type', 'date', 'keep-alive',
  'location', 'retry-after', 'set-cookie', 'transfer-encoding', 'www-authenticate', 'x-forward-auth-login',
  'x-session-cache', 'x-session-cache-tier'])

function headerName (env: Env, name: string, fallback: string, taken: Set<string>): string {
  const value = raw(env, name) ?? fallback
  if (!TOKEN.test(value)) throw new ConfigError(name, 'must be an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~)')
  const lower = value.toLowerCase()
  if (RESERVED_HEADERS.has(lower)) throw new ConfigError(name, `must not be ${value}: the answer sets it itself`)
  if (taken.has(lower)) throw new ConfigError(name, `names the same header as another FORWARD_AUTH_*_HEADER: ${value}`)
  taken.add(lower)
  return value
}

function forwardAuth (env: Env): ForwardAuthConfig {
  const cookie = raw(env, 'FORWARD_AUTH_COOKIE')
  if (cookie !== undefined && !TOKEN.test(cookie)) throw new ConfigError('FORWARD_AUTH_COOKIE', 'must be a cookie name (letters, digits and !#$%&\'*+-.^_`|~)')
  const taken = new Set<string>()
  return {
    cookie,
    loginUrl: url(env, 'FORWARD_AUTH_LOGIN_URL', ['http:', 'https:']),
    headers: {
      user: headerName(env, 'FORWARD_AUTH_USER_HEADER', 'X-Auth-Request-User', taken),
      email: headerName(env, 'FORWARD_AUTH_EMAIL_HEADER', 'X-Auth-Request-Email', taken),
      username: headerName(env, 'FORWARD_AUTH_USERNAME_HEADER', 'X-Auth-Request-Preferred-Username', taken),
      sessionId: headerName(env, 'FORWARD_AUTH_SESSION_HEADER', 'X-Auth-Request-Session-Id', taken)
    }
  }
}

// .env.example's placeholders look like this; a secret left so would be public.
const PLACEHOLDER = /^<[^<>]*>$/

// `ip` or `ip/bits`, comma-separated, IPv4 or IPv6.
function addresses (env: Env, name: string): string[] {
  const value = raw(env, name)
  if (value === undefined) return []
  return value.split(',').map(s => s.trim()).filter(s => s !== '').map(entry => {
    const [ip, bits, extra] = entry.split('/')
    const version = isIP(ip ?? '')
    const max = version === 6 ? 128 : 32
    if (version === 0 || extra !== undefined || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
      throw new ConfigError(name, `"${entry}" is not an IP address or CIDR`)
    }
    return entry
  })
}

// What the answer already has, and what must never be answered.
const BUILT_IN = {
  session: { columns: ['id', 'user_id', 'token', 'expires_at', 'created_at', 'last_activity_at', 'ip_address', 'user_agent'], names: ['id', 'userId', 'expiresAt', 'createdAt', 'lastActivityAt', 'ipAddress', 'userAgent'] },
  user: { columns: ['id', 'email', 'first_name', 'last_name', 'username'], names: ['id', 'email', 'firstName', 'lastName', 'username'] }
} as const

// `column` or `column:type`, comma-separated; the type (default text) says
// how the value is answered and is checked against Postgres at start.
function extraFields (env: Env, name: string, table: 'session' | 'user'): ExtraField[] {
  const value = raw(env, name)
  if (value === undefined) return []
  const seen = new Set<string>()
  return value.split(',').map(s => s.trim()).filter(s => s !== '').map(entry => {
    const [column = '', type = 'text', extra] = entry.split(':').map(s => s.trim())
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(column) || extra !== undefined) throw new ConfigError(name, `"${entry}" is not a column name (lowercase letters, digits, _), optionally :type`)
    if (!(EXTRA_TYPES as readonly string[]).includes(type)) throw new ConfigError(name, `${column}: the type must be one of ${EXTRA_TYPES.join(', ')}`)
    const builtIn = BUILT_IN[table]
    const field = { table, column, name: camelCase(column), type: type as ExtraType }
    if ((builtIn.columns as readonly string[]).includes(column) || (builtIn.names as readonly string[]).includes(field.name)) {
      throw new ConfigError(name, `${column} is answered already (or must never be)`)
    }
    if (seen.has(field.name)) throw new ConfigError(name, `${column} is named twice`)
    seen.add(field.name)
    return field
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
    if (PLACEHOLDER.test(key)) throw new ConfigError('SERVICE_API_KEYS', 'holds a <placeholder> from .env.example')
  }
  const metricsToken = raw(env, 'METRICS_TOKEN')
  if (metricsToken !== undefined && metricsToken.length < 16) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters')
  }
  if (metricsToken !== undefined && PLACEHOLDER.test(metricsToken)) {
    throw new ConfigError('METRICS_TOKEN', 'holds a <placeholder> from .env.example')
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
  const activityResolutionSeconds = integer(env, 'ACTIVITY_RESOLUTION_SECONDS', 60, 1, 86_400)
  const sessionSlidingSeconds = integer(env, 'SESSION_SLIDING_SECONDS', 0, 0, 10 * 365 * 86_400)
  // A session used now is extended at most once per resolution and held back
  // for up to two: a shorter sliding window could expire a session in use.
  if (sessionSlidingSeconds > 0 && sessionSlidingSeconds <= 2 * activityResolutionSeconds) {
    throw new ConfigError('SESSION_SLIDING_SECONDS', `must be more than twice ACTIVITY_RESOLUTION_SECONDS (${activityResolutionSeconds}), or 0`)
  }
  const redisTimeoutMs = integer(env, 'REDIS_TIMEOUT_MS', 200, 1, 60_000)
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
    redisTimeoutMs,
    redisConnectTimeoutMs: Math.max(1000, redisTimeoutMs * 5),
    sessionCacheTtlSeconds: integer(env, 'SESSION_CACHE_TTL_SECONDS', 300, 1, 86_400),
    sessionCacheStaleSeconds: integer(env, 'SESSION_CACHE_STALE_SECONDS', 3600, 0, 604_800),
    sessionCachePrefix: prefix,
    breakerThreshold: fraction(env, 'BREAKER_THRESHOLD', 0.5),
    breakerWindowMs: integer(env, 'BREAKER_WINDOW_MS', 10_000, 100, 3_600_000),
    breakerHalfOpenAfterMs: integer(env, 'BREAKER_HALF_OPEN_AFTER_MS', 30_000, 10, 3_600_000),
    serviceApiKeys: keys,
    metricsToken,
    rateLimitMax: integer(env, 'RATE_LIMIT_MAX', 0, 0, 10_000_000),
    rateLimitFailedMax: integer(env, 'RATE_LIMIT_FAILED_MAX', 600, 0, 10_000_000),
    rateLimitCallerFailedMax: integer(env, 'RATE_LIMIT_CALLER_FAILED_MAX', 60_000, 0, 100_000_000),
    trustedProxies: addresses(env, 'TRUSTED_PROXIES'),
    rateLimitWindowMs: integer(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1000, 3_600_000),
    activityResolutionSeconds,
    sessionIdleTimeoutSeconds: integer(env, 'SESSION_IDLE_TIMEOUT_SECONDS', 0, 0, 10 * 365 * 86_400),
    sessionSlidingSeconds,
    sessionAbsoluteMaxSeconds: integer(env, 'SESSION_ABSOLUTE_MAX_SECONDS', 30 * 86_400, 1, 100 * 365 * 86_400),
    localCacheMaxEntries: integer(env, 'LOCAL_CACHE_MAX_ENTRIES', 100_000, 0, 10_000_000),
    localCacheMaxBytes: integer(env, 'LOCAL_CACHE_MAX_BYTES', 64 * 1024 * 1024, 1024 * 1024, 64 * 1024 * 1024 * 1024),
    localCacheTtlSeconds: integer(env, 'LOCAL_CACHE_TTL_SECONDS', 60, 1, 86_400),
    localCacheLeaseMs: integer(env, 'LOCAL_CACHE_LEASE_MS', 1000, 100, 60_000),
    changeLogRetentionSeconds: integer(env, 'CHANGE_LOG_RETENTION_SECONDS', 3600, 60, 30 * 86_400),
    cacheWarmSessions: integer(env, 'CACHE_WARM_SESSIONS', 10_000, 0, 10_000_000),
    cacheWarmRate: integer(env, 'CACHE_WARM_RATE', 5000, 1, 1_000_000),
    extraFields: { session: extraFields(env, 'SESSION_EXTRA_FIELDS', 'session'), user: extraFields(env, 'USER_EXTRA_FIELDS', 'user') },
    forwardAuth: forwardAuth(env),
    logLevel: logLevel as Config['logLevel']
  }
}
