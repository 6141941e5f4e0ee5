import t from 'tap'
import { createSessionClient, SessionValidatorError, type RetryInfo } from '../src/index.js'
import { createSession, createUser } from '../../test/helpers/fixtures.js'
import { sleep, waitFor } from '../../test/helpers/ports.js'
import { startService } from './helpers/service.js'

// Each test says which deadline it gives the client; "within" allows for the
// event loop and a loaded machine on top of it.
const SLACK_MS = 250

async function timed<T> (fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now()
  const result = await fn()
  return [result, performance.now() - start]
}

t.test('Postgres cut, session not cached: unavailable (the service\'s 503), never invalid; valid again once it is back', async t => {
  const service = await startService(t, { redis: true, cuttablePostgres: true })
  const userId = await createUser(service.db.sql)
  const uncached = await createSession(service.db.sql, userId)
  const retries: RetryInfo[] = []
  const client = createSessionClient({ url: service.url, timeoutMs: 2000, onRetry: info => retries.push(info) })
  t.teardown(() => client.close())

  service.postgres!.cut()
  const [short, shortMs] = await timed(() => client.validate(uncached.token, { timeoutMs: 400 }))
  t.same(short, { outcome: 'unavailable', reason: 'service_unavailable', status: 503, retryAfterMs: 1000 })
  t.ok(shortMs < 400 + SLACK_MS, `a Retry-After past the deadline is handed back at once, not waited for (${Math.round(shortMs)} ms)`)

  const [result, ms] = await timed(() => client.validate(uncached.token))
  // the second 503 usually comes back in time; on a loaded machine the deadline may pass first
  t.match(result, { outcome: 'unavailable', reason: /^(service_unavailable|timeout)$/ })
  t.ok(ms < 2000 + SLACK_MS, `answered within the 2000 ms deadline (${Math.round(ms)} ms)`)
  t.same(retries, [{ attempt: 1, reason: 'service_unavailable', status: 503, waitMs: 1000 }], 'retried once, after the Retry-After the service gave')

  const [unknown] = await timed(() => client.validate('never-issued-token', { timeoutMs: 400 }))
  t.equal(unknown.outcome, 'unavailable', 'an unknown token is not called invalid either: the service cannot know')

  const revokeError = await client.revoke({ token: uncached.token }, { timeoutMs: 400 }).catch((e: unknown) => e)
  t.type(revokeError, SessionValidatorError, 'a revoke that may not have happened throws')
  t.match(revokeError, { reason: 'service_unavailable', status: 503, retryAfterMs: 1000 })

  service.postgres!.restore()
  await waitFor('the service to reach Postgres again', async () => (await client.validate(uncached.token)).outcome === 'valid', 15_000, 200)
  t.pass('valid again, without a restart')
})

t.test('service frozen (SIGSTOP) and then stopped', async t => {
  const service = await startService(t)
  const userId = await createUser(service.db.sql)
  const s = await createSession(service.db.sql, userId)
  const retries: RetryInfo[] = []
  const client = createSessionClient({ url: service.url, timeoutMs: 500, onRetry: info => retries.push(info) })
  t.teardown(() => client.close())
  // the first call opens the connection (and the service's first lookup may
  // be slow on a loaded machine): a deadline of its own
  t.equal((await client.validate(s.token, { timeoutMs: 10_000 })).outcome, 'valid', 'a kept-alive connection is open')

  t.test('frozen: unavailable (timeout) when the deadline passes', async t => {
    service.server.child.kill('SIGSTOP')
    t.teardown(() => { service.server.child.kill('SIGCONT') })
    const [result, ms] = await timed(() => client.validate(s.token))
    t.same(result, { outcome: 'unavailable', reason: 'timeout' })
    t.ok(ms >= 490 && ms < 500 + SLACK_MS, `after the 500 ms deadline, not much later (${Math.round(ms)} ms)`)

    const [own, ownMs] = await timed(() => client.validate(s.token, { timeoutMs: 150 }))
    t.same(own, { outcome: 'unavailable', reason: 'timeout' })
    t.ok(ownMs < 150 + SLACK_MS, `a per-call deadline overrides the client's (${Math.round(ownMs)} ms)`)

    const controller = new AbortController()
    setTimeout(() => controller.abort(), 50)
    const [aborted, abortedMs] = await timed(() => client.validate(s.token, { signal: controller.signal }))
    t.same(aborted, { outcome: 'unavailable', reason: 'aborted' })
    t.ok(abortedMs < 50 + SLACK_MS, `the caller's signal ends the call (${Math.round(abortedMs)} ms)`)
    t.same(await client.validate(s.token, { signal: AbortSignal.abort() }), { outcome: 'unavailable', reason: 'aborted' }, 'an aborted signal sends nothing')
  })

  t.test('thawed: valid again', async t => {
    t.equal((await client.validate(s.token)).outcome, 'valid')
  })

  t.test('stopped: unavailable (connection) well within the deadline, after the bounded retries', async t => {
    service.server.child.kill('SIGKILL')
    await service.server.exited
    retries.length = 0
    const [result, ms] = await timed(() => client.validate(s.token))
    t.same(result, { outcome: 'unavailable', reason: 'connection', cause: 'ECONNREFUSED' })
    t.ok(ms < 500, `${Math.round(ms)} ms`)
    t.same(retries.map(r => [r.reason, r.cause, r.waitMs]), [['connection', 'ECONNREFUSED', 50], ['connection', 'ECONNREFUSED', 100]], 'two retries (the default), backing off')
    const err = await client.revokeAll(userId).catch((e: unknown) => e)
    t.match(err, { name: 'SessionValidatorError', reason: 'connection', cause: 'ECONNREFUSED', message: /could not revoke: connection \(ECONNREFUSED\)/ })
  })
})

t.test('429 with Retry-After', async t => {
  // 5 requests per 2 s window per caller (RATE_LIMIT_MAX is the per-caller request limit)
  const service = await startService(t, { env: { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '2000' } })
  const userId = await createUser(service.db.sql)
  const s = await createSession(service.db.sql, userId)

  // Spends the window's budget with plain requests until the service answers
  // 429, in a window with more than a second left (Retry-After: 2).
  async function exhaust (): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${service.url}/sessions/validate`, { method: 'POST', headers: { authorization: `Bearer ${s.token}` } })
      await res.arrayBuffer()
      if (res.status !== 429) continue
      if (res.headers.get('retry-after') === '2') return
      await sleep(1100)
    }
    throw new Error('no 429 with Retry-After: 2 in 100 requests')
  }

  t.test('is retried after Retry-After when the deadline leaves room', async t => {
    const retries: RetryInfo[] = []
    const client = createSessionClient({ url: service.url, timeoutMs: 4000, onRetry: info => retries.push(info) })
    t.teardown(() => client.close())
    await exhaust()
    const [result, ms] = await timed(() => client.validate(s.token))
    t.equal(result.outcome, 'valid', 'the retry, in the next window, is answered')
    // Retry-After counts down: 2, or 1 when the window turned past its last second meanwhile
    t.match(retries, [{ attempt: 1, reason: 'rate_limited', status: 429 }])
    t.equal(retries.length, 1)
    const waitMs = retries[0]!.waitMs
    t.ok(waitMs === 2000 || waitMs === 1000, `waited the ${waitMs} ms Retry-After said`)
    t.ok(ms >= waitMs && ms < 4000, `${Math.round(ms)} ms`)
  })

  t.test('is handed back at once, with when to retry, when it does not', async t => {
    const client = createSessionClient({ url: service.url, timeoutMs: 1000 })
    t.teardown(() => client.close())
    await exhaust()
    const [result, ms] = await timed(() => client.validate(s.token))
    t.match(result, { outcome: 'unavailable', reason: 'rate_limited', status: 429 })
    t.ok(result.outcome === 'unavailable' && [1000, 2000].includes(result.retryAfterMs ?? 0), 'with the Retry-After it was given')
    t.ok(ms < 1000, `${Math.round(ms)} ms`)
  })
})
