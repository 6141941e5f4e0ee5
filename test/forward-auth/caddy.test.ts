import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { startCaddy } from '../helpers/caddy.js'
import { forwardAuthThrough, type ProxyUnderTest } from '../helpers/forward-auth-scenarios.js'

// Real Caddy (Debian's 2.6.2, forward_auth) with deploy/forward-auth/Caddyfile.
const db = await freshDatabase(t)
const caddy: ProxyUnderTest = { config: 'Caddyfile', start: startCaddy, throttled: 429 }

await forwardAuthThrough(t, db, caddy)
