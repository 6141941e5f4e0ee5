import t from 'tap'
import { loadConfig } from '../src/config.js'
import { ConfigError } from '../src/errors.js'

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
    [{ DATABASE_URL: 'mysql://root:example-only-xyzzy@db/app' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'postgres://user:example-only-xyzzy@' }, 'DATABASE_URL'], // an example credential, never real
    [{ REDIS_URL: 'not a url with example-only-xyzzy' }, 'REDIS_URL'],
    [{ REDIS_URL: 'http://default:example-only-xyzzy@cache:6379' }, 'REDIS_URL'],
    [{ DATABASE_URL: 'postgres://user:example-only%zzxyzzy@db/app' }, 'DATABASE_URL'], // the driver would throw URIError
    [{ REDIS_URL: 'redis://default:example-only%zzxyzzy@cache:6379' }, 'REDIS_URL'],
    [{ SESSION_CACHE_TTL_SECONDS: '-5' }, 'SESSION_CACHE_TTL_SECONDS'],
    [{ SESSION_CACHE_PREFIX: 'has{brace}' }, 'SESSION_CACHE_PREFIX'],
    [{ BREAKER_THRESHOLD: '1.5' }, 'BREAKER_THRESHOLD'],
    [{ BREAKER_WINDOW_MS: '10s' }, 'BREAKER_WINDOW_MS'],
    [{ SERVICE_API_KEYS: 'short' }, 'SERVICE_API_KEYS'],
    [{ SERVICE_API_KEYS: 'aaaaaaaaaaaaaaaa,<api-key-for-studio>' }, 'SERVICE_API_KEYS'],
    [{ METRICS_TOKEN: '<metrics-bearer-token>' }, 'METRICS_TOKEN'],
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
      t.notOk(message.includes('xyzzy'), `${variable}: no secret in "${message}"`)
      t.notOk(message.includes('\n'), 'one line')
    }
  }
})

t.test('forward auth: no cookie and the X-Auth-Request-* names by default, each configurable', async t => {
  t.same(loadConfig({}).forwardAuth, {
    cookie: undefined,
    loginUrl: undefined,
    headers: {
      user: 'X-Auth-Request-User',
      email: 'X-Auth-Request-Email',
      username: 'X-Auth-Request-Preferred-Username',
      sessionId: 'X-Auth-Request-Session-Id'
    }
  })
  const c = loadConfig({
    FORWARD_AUTH_COOKIE: ' __Host-session ',
    FORWARD_AUTH_LOGIN_URL: 'https://app.example.com/login',
    FORWARD_AUTH_USER_HEADER: 'Remote-User',
    FORWARD_AUTH_EMAIL_HEADER: 'Remote-Email',
    FORWARD_AUTH_USERNAME_HEADER: 'Remote-Name',
    FORWARD_AUTH_SESSION_HEADER: 'Remote-Session'
  }).forwardAuth
  t.equal(c.cookie, '__Host-session')
  t.equal(c.loginUrl, 'https://app.example.com/login')
  t.same(c.headers, { user: 'Remote-User', email: 'Remote-Email', username: 'Remote-Name', sessionId: 'Remote-Session' })
})

t.test('forward auth: names that are not tokens, reserved or taken twice are refused, naming the variable', async t => {
  const bad: Array<[Record<string, string>, string]> = [
    [{ FORWARD_AUTH_COOKIE: 'my session' }, 'FORWARD_AUTH_COOKIE'],
    [{ FORWARD_AUTH_COOKIE: 'a;b=c' }, 'FORWARD_AUTH_COOKIE'],
    [{ FORWARD_AUTH_USER_HEADER: 'X-User:' }, 'FORWARD_AUTH_USER_HEADER'],
    [{ FORWARD_AUTH_EMAIL_HEADER: 'X Email' }, 'FORWARD_AUTH_EMAIL_HEADER'],
    [{ FORWARD_AUTH_USERNAME_HEADER: 'X-Ünïcode' }, 'FORWARD_AUTH_USERNAME_HEADER'],
    [{ FORWARD_AUTH_SESSION_HEADER: 'Content-Length' }, 'FORWARD_AUTH_SESSION_HEADER'],
    [{ FORWARD_AUTH_USER_HEADER: 'set-cookie' }, 'FORWARD_AUTH_USER_HEADER'],
    [{ FORWARD_AUTH_EMAIL_HEADER: 'x-auth-request-user' }, 'FORWARD_AUTH_EMAIL_HEADER'],
    [{ FORWARD_AUTH_LOGIN_URL: 'javascript:alert(1)' }, 'FORWARD_AUTH_LOGIN_URL'],
    [{ FORWARD_AUTH_LOGIN_URL: '/login' }, 'FORWARD_AUTH_LOGIN_URL']
  ]
  for (const [env, variable] of bad) {
    t.throws(() => loadConfig(env), new RegExp(`^${variable}: `), `${JSON.stringify(env)} is refused`)
  }
})
