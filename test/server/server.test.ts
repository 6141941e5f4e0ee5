import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { request, Agent } from 'node:http'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { freePort, sleep } from '../helpers/ports.js'
import { startServer, waitForHttp } from '../helpers/process.js'

const run = promisify(execFile)

t.test('npm start with no DATABASE_URL: embedded Postgres, a demo token and a curl that answers 200', async t => {
  const port = await freePort()
  const server = startServer(t, { PORT: String(port), HOST: '127.0.0.1' })
  await waitForHttp(`http://127.0.0.1:${port}/healthz`)
  const line = server.stdout().split('\n').find(l => l.trim().startsWith('curl '))
  t.ok(line, 'a ready-to-paste curl is printed')
  const { stdout } = await run('bash', ['-c', line!.trim()], { timeout: 10_000 })
  const body = JSON.parse(stdout)
  t.equal(body.valid, true)
  t.equal(body.user.email, 'ada@example.com')
  t.match(server.stdout() + server.stderr(), /DATABASE_URL is not set/)
  t.match(server.stdout() + server.stderr(), /REDIS_URL.* is not set/)
  t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200)
  // memory is on without Redis, in the demo too: the token is now in it
  const again = await fetch(`http://127.0.0.1:${port}/sessions/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: /"token":"([^"]+)"/.exec(line!)![1] }) })
  t.equal(again.headers.get('x-session-cache'), 'hit')
  t.equal(again.headers.get('x-session-cache-tier'), 'local', 'answered from memory')
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0)
})

t.test('a bad variable stops the process with one line naming it, and no secret', async t => {
  const server = startServer(t, { REDIS_URL: 'http://default:hunter2hunter2@cache:6379', PORT: '1' })
  t.equal(await server.exited, 1)
  const lines = server.stderr().trim().split('\n')
  t.equal(lines.length, 1)
  t.match(lines[0], /^invalid configuration: REDIS_URL: /)
  t.notMatch(server.stderr() + server.stdout(), /hunter2/)
})

t.test('SIGTERM under load: accepted requests all complete, pending activity is flushed, exit 0', async t => {
  const db = await freshDatabase(t)
  const redisUrl = await sharedRedisUrl()
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const userId = await createUser(db.sql)
  const sessions = await Promise.all(Array.from({ length: 20 }, () => createSession(db.sql, userId)))
  const port = await freePort()
  const server = startServer(t, {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    SESSION_CACHE_PREFIX: prefix,
    ACTIVITY_RESOLUTION_SECONDS: '3600',
    LOG_LEVEL: 'warn'
  })
  await waitForHttp(`http://127.0.0.1:${port}/readyz`)

  const agent = new Agent({ keepAlive: true, maxSockets: 16 })
  let ok = 0
  let refused = 0
  let failed = 0
  const failures: string[] = []
  const state = { stop: false }
  const one = (token: string) => new Promise<void>(resolve => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/sessions/validate', agent, headers: { 'content-type': 'application/json' } }, res => {
      res.resume()
      res.on('end', () => {
        // 503 from a closing server is a refusal: the request was not taken on
        if (res.statusCode === 200) ok++
        else if (res.statusCode === 503) refused++
        else failed++
        resolve()
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      // Not accepted: no connection at all, or a kept-alive connection the server
      // closed as idle just as this request was written (the race every HTTP
      // keep-alive client retries). Anything else lost an accepted request.
      if (err.code === 'ECONNREFUSED' || (req.reusedSocket && err.code === 'ECONNRESET')) refused++
      else { failed++; failures.push(`${err.code} reused=${req.reusedSocket}`) }
      resolve()
    })
    req.end(JSON.stringify({ token }))
  })
  const workers = Array.from({ length: 16 }, async (_v, w) => {
    for (let i = 0; !state.stop && i < 100_000; i++) await one(sessions[(w + i) % sessions.length]!.token)
  })
  await sleep(700)
  server.child.kill('SIGTERM')
  const code = await server.exited
  state.stop = true
  await Promise.all(workers)
  agent.destroy()
  t.equal(code, 0, 'exit 0')
  t.ok(ok > 100, `${ok} requests answered 200 before the stop`)
  t.equal(failed, 0, `no accepted request failed (${refused} refused after the stop) ${failures.join(', ')}`)
  const written = await db.sql`SELECT 1 FROM platform.user_sessions WHERE last_activity_at IS NOT NULL`
  t.equal(written.length, sessions.length, 'activity pending at SIGTERM was flushed')
})
