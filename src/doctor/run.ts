// Runs every check against the configuration the service would read.
import { loadConfig, type Config } from '../config.js'
import { ConfigError } from '../errors.js'
import { postgresChecks } from './postgres-checks.js'
import { redisChecks } from './redis-checks.js'
import { fail, pass, redact, report, type Check, type Report } from './report.js'

function cacheMode (config: Config): string {
  if (config.redisClusterNodes.length > 0) return `a Cluster of ${config.redisClusterNodes.length} seed nodes`
  if (config.redisSentinels.length > 0) return `Sentinel (${config.redisSentinels.length} sentinels)`
  return config.redisUrl === undefined ? 'off' : 'REDIS_URL'
}

export interface DoctorOptions {
  /** The latency pass mark; Studio's documented 5 ms unless told otherwise. */
  p99Ms?: number
  /** Warnings fail the run too (--strict). */
  strict?: boolean
}

export async function runDoctor (env: Record<string, string | undefined>, options: DoctorOptions = {}): Promise<Report> {
  let config: Config
  try {
    config = loadConfig(env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return report([fail('config', err.message)], options.strict)
  }
  const checks: Check[] = [
    pass('config', `valid (Postgres: ${config.databaseUrl === undefined ? 'unset' : 'DATABASE_URL'}, cache: ${cacheMode(config)}, prefix ${config.sessionCachePrefix})`),
    ...await postgresChecks(config),
    ...await redisChecks(config, options.p99Ms)
  ]
  const secrets = [config.databaseUrl, config.databaseReadUrl, config.redisUrl, config.redisPassword, config.redisSentinelPassword, config.metricsToken, ...config.serviceApiKeys]
  for (const url of [config.databaseUrl, config.databaseReadUrl, config.redisUrl]) {
    if (url !== undefined) secrets.push(new URL(url).password, decodeURIComponent(new URL(url).password))
  }
  return report(checks.map(c => ({ ...c, detail: redact(c.detail, secrets) })), options.strict)
}
