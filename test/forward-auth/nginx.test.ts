import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { startNginx } from '../helpers/nginx.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { COOKIE } from '../helpers/forward-auth-proxy.js'
import { behind, call, forwardAuthThrough, type ProxyUnderTest } from '../helpers/forward-auth-scenarios.js'

// Real nginx (Debian's, auth_request) with deploy/forward-auth/nginx.conf.
const db = await freshDatabase(t)
const nginx: ProxyUnderTest = { config: 'nginx.conf', start: startNginx, throttled: 503 }

await forwardAuthThrough(t, db, nginx)

t.test('nginx with a wrong x-api-key: the client gets 403 and the app is never reached', async t => {
  const { upstream, proxy } = await behind(t, db, nginx, {}, 'not-the-key-of-this-service')
  const s = await createSession(db.sql, await createUser(db.sql))
  const res = await call(proxy, { cookie: `${COOKIE}=${s.token}` })
  t.equal(res.status, 403)
  t.equal(upstream.seen.length, 0)
})
