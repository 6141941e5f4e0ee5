import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

t.test('defaults match the contract', async t => {
  const c = loadConfig({})
  t.equal(c.port, 3000)
  t.equal(c.host, '::')
  t.equal(c.databaseUrl, undefined)
  t.equal(c.databasePoolMax, 10)
  t.equal(c.redisUrl, undefined)
  t.equal(c.sessionCacheTtlSeconds, 300)
  t.equal(c.sessionCachePrefix, 'session:')
  t.equal(c.breakerThreshold, 0.5)
  t.equal(c.breakerWindowMs, 10_000)
  t.equal(c.breakerHalfOpenAfterMs, 30_000)
  t.same(c.serviceApiKeys, [])
  t.equal(c.activityResolutionSeconds, 60)
  t.equal(c.logLevel, 'info')
})

t.test('values are read and trimmed', async t => {
  const c = loadConfig({
    PORT: '8080',
    HOST: '0.0.0.0',
    DATABASE_URL: 'postgres://u@db.internal:5432/app',
    REDIS_URL: 'rediss://default:pw@cache.internal:6380',
    SERVICE_API_KEYS: ' aaaaaaaaaaaaaaaa , bbbbbbbbbbbbbbbb ,',
    BREAKER_THRESHOLD: '0.25',
    LOG_LEVEL: 'warn'
  })
  t.equal(c.port, 8080)
  t.equal(c.redisUrl, 'rediss://default:pw@cache.internal:6380')
  t.same(c.serviceApiKeys, ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb'])
  t.equal(c.breakerThreshold, 0.25)
  t.equal(c.logLevel, 'warn')
})

t.test('a bad value names the variable and never echoes a URL', async t => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_POOL_MAX: '0' }, 'DATABASE_POOL_MAX'],
    [{ DATABASE_URL: 'mysql://root:hunter2hunter2@db/app' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'postgres://user:hunter2hunter2@' }, 'DATABASE_URL'], // an example credential, never real
    [{ REDIS_URL: 'not a url with hunter2hunter2' }, 'REDIS_URL'],
    [{ REDIS_URL: 'http://default:hunter2hunter2@cache:6379' }, 'REDIS_URL'],
    [{ DATABASE_URL: 'postgres://user:hunter2%zzhunter2@db/app' }, 'DATABASE_URL'], // the driver would throw URIError
    [{ REDIS_URL: 'redis://default:hunter2%zzhunter2@cache:6379' }, 'REDIS_URL'],
    [{ SESSION_CACHE_TTL_SECONDS: '-5' }, 'SESSION_CACHE_TTL_SECONDS'],
    [{ SESSION_CACHE_PREFIX: 'has{brace}' }, 'SESSION_CACHE_PREFIX'],
    [{ BREAKER_THRESHOLD: '1.5' }, 'BREAKER_THRESHOLD'],
    [{ BREAKER_WINDOW_MS: '10s' }, 'BREAKER_WINDOW_MS'],
    [{ SERVICE_API_KEYS: 'short' }, 'SERVICE_API_KEYS'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL']
  ]
  for (const [env, variable] of bad) {
    try {
      loadConfig(env)
      t.fail(`${variable} should be refused`)
    } catch (err) {
      t.ok(err instanceof ConfigError, variable)
      const message = (err as Error).message
      t.ok(message.startsWith(`${variable}: `), message)
      t.notOk(message.includes('hunter2'), `${variable}: no secret in "${message}"`)
      t.notOk(message.includes('\n'), 'one line')
    }
  }
})
