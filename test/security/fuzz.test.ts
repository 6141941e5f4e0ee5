import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import fc from 'fast-check'
import { hashToken } from '../../src/token.js'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, keysUnder, sharedRedisUrl } from '../helpers/redis.js'
import { testApp } from '../helpers/app.js'
import { createSession, createUser, type TestSession } from '../helpers/fixtures.js'
import { sleep } from '../helpers/ports.js'

// Random requests over the whole HTTP surface. Whatever arrives: never a 5xx,
// never `valid` for a token that is not a live issued one, no secret echoed,
// and a refused request (any 4xx, 401 included) changes no row and no key.

const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 200)

const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
const redis = inspector(t, redisUrl, prefix)
const apiKey = `fuzz-${randomBytes(16).toString('hex')}`
const { app, logs } = await testApp(t, {
  databaseUrl: db.url,
  redisUrl,
  prefix,
  // limits far away: this is about the routes, the limiter has its own tests
  env: { SERVICE_API_KEYS: apiKey, RATE_LIMIT_MAX: '10000000', RATE_LIMIT_FAILED_MAX: '10000000' }
})

const users = [await createUser(db.sql), await createUser(db.sql)]
let live: TestSession[] = []
const everIssued: TestSession[] = []

async function issue (): Promise<void> {
  while (live.length < 4) {
    const s = await createSession(db.sql, users[live.length % 2]!)
    live.push(s)
    everIssued.push(s)
  }
}

async function refreshLive (): Promise<void> {
  const ids = new Set((await db.sql<Array<{ id: string }>>`SELECT id FROM platform.user_sessions`).map(r => r.id))
  live = live.filter(s => ids.has(s.id))
  await issue()
}
await issue()
const expired = await createSession(db.sql, users[0]!, { expiresInMs: -60_000 })
everIssued.push(expired)

// ---- what a request is made of -------------------------------------------

type Mutation = 'none' | 'upper' | 'append' | 'truncate' | 'pad' | 'nul' | 'fullwidth' | 'digest'
type TokenSpec = { kind: 'live', index: number, mutate: Mutation } | { kind: 'expired' } | { kind: 'literal', value: string }

const literalToken = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[\x21-\x7e]{1,80}$/) },
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', '\u0000', '\t', '\uFEFF', 'a\u200Bb', '\ud800', 'null', "' OR '1'='1", '%00', '\\', '"',
    'a'.repeat(512), 'a'.repeat(513), 'Bearer x', '*', 'session:*')
)

const tokenSpec: fc.Arbitrary<TokenSpec> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('live' as const), index: fc.nat(), mutate: fc.constantFrom<Mutation>('none', 'none', 'none', 'upper', 'append', 'truncate', 'pad', 'nul', 'fullwidth', 'digest') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'expired' as const }) },
  { weight: 4, arbitrary: literalToken.map(value => ({ kind: 'literal' as const, value })) }
)

type Value = { kind: 'token', spec: TokenSpec } | { kind: 'json', value: unknown }
const value: fc.Arbitrary<Value> = fc.oneof(
  { weight: 5, arbitrary: tokenSpec.map(spec => ({ kind: 'token' as const, spec })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map(v => ({ kind: 'json' as const, value: v })) },
  { weight: 1, arbitrary: fc.array(literalToken, { maxLength: 2 }).map(v => ({ kind: 'json' as const, value: v })) }
)

type SessionIdSpec = { kind: 'live', index: number } | { kind: 'other', value: string }
const sessionIdSpec: fc.Arbitrary<SessionIdSpec> = fc.oneof(
  fc.nat().map(index => ({ kind: 'live' as const, index })),
  fc.oneof(fc.uuid(), literalToken, fc.uuid().map(u => u.toUpperCase()), fc.uuid().map(u => ` ${u}`)).map(v => ({ kind: 'other' as const, value: v }))
)

type Body =
  | { kind: 'none' }
  | { kind: 'object', token: Value | null, sessionId: SessionIdSpec | null, extra: Record<string, unknown> }
  | { kind: 'duplicate', first: TokenSpec, second: TokenSpec }
  | { kind: 'raw', text: string }
  | { kind: 'bytes', bytes: Uint8Array }
  | { kind: 'oversize', token: TokenSpec, size: number }
  | { kind: 'utf16', token: TokenSpec }
  | { kind: 'escaped', token: TokenSpec }

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: 'none' as const }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('object' as const),
      token: fc.option(value, { freq: 4 }),
      sessionId: fc.option(sessionIdSpec, { freq: 2 }),
      extra: fc.oneof(
        { weight: 4, arbitrary: fc.constant({}) },
        { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }) }
      )
    })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), first: tokenSpec, second: tokenSpec }) },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.constantFrom('', '{', '}', '[]', 'null', '"x"', '123', 'true', '{"token":}', '{"token":"a"}garbage', '\uFEFF{"token":"abc"}',
        '{"__proto__":{"token":"abc"}}', '{"constructor":{"prototype":{"token":"abc"}}}', '['.repeat(3000) + ']'.repeat(3000),
        '{"token":"abc","token":{"$ne":null}}', 'token=abc', '{"token":"abc"}\u0000')
    ).map(text => ({ kind: 'raw' as const, text }))
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map(bytes => ({ kind: 'bytes' as const, bytes })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('oversize' as const), token: tokenSpec, size: fc.integer({ min: 4097, max: 20_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('utf16' as const), token: tokenSpec }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('escaped' as const), token: tokenSpec }) }
)

type Auth = { kind: 'bearer', scheme: string, spec: TokenSpec, pad: string } | { kind: 'literal', value: string }
const auth: fc.Arbitrary<Auth> = fc.oneof(
  fc.record({ kind: fc.constant('bearer' as const), scheme: fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'Token', ''), spec: tokenSpec, pad: fc.constantFrom(' ', '  ', '\t', '') }),
  literalToken.map(v => ({ kind: 'literal' as const, value: v }))
)

const request = fc.record({
  method: fc.oneof({ weight: 12, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') }),
  route: fc.oneof(
    { weight: 8, arbitrary: fc.constant('/sessions/validate') },
    { weight: 3, arbitrary: fc.constant('/sessions/revoke') },
    { weight: 2, arbitrary: fc.oneof(fc.nat().map(i => ({ user: i })), fc.oneof(fc.uuid(), literalToken).map(v => ({ raw: v }))) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('/sessions/validate?token=abc', '/sessions/validate/', '/Sessions/Validate', '/sessions//validate', '/sessions/validate#x', '/users/../sessions/validate', '/sessions/validate%00',
        '/users/%ZZ/sessions/revoke', '/users/%C3/sessions/revoke', '/users/%00/sessions/revoke')
    }
  ),
  body,
  contentType: fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    {
      weight: 2,
      arbitrary: fc.constantFrom(undefined, 'application/json; charset=utf-8', 'application/json; charset=utf-16le', 'application/json; charset=latin1',
        'APPLICATION/JSON', 'application/json;;', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
        'application/vnd.api+json', 'application/xml', '', 'nonsense')
    }
  ),
  authorization: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: auth }),
  duplicateAuthorization: fc.boolean(),
  apiKey: fc.oneof({ weight: 9, arbitrary: fc.constant('right') }, { weight: 1, arbitrary: fc.constantFrom('none', 'wrong', 'empty', 'twice') }),
  contentEncoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown'), { freq: 8, nil: undefined }),
  extraHeaders: fc.dictionary(fc.stringMatching(/^x-[a-z0-9-]{1,10}$/), fc.stringMatching(/^[\x20-\x7e]{0,20}$/), { maxKeys: 2 })
})
type Request = typeof request extends fc.Arbitrary<infer R> ? R : never

// ---- turning a description into bytes ------------------------------------

function tokenOf (spec: TokenSpec, carried: string[]): string {
  let token: string
  if (spec.kind === 'literal') token = spec.value
  else if (spec.kind === 'expired') token = expired.token
  else {
    const base = live[spec.index % live.length]!.token
    token = {
      none: base,
      upper: base.toUpperCase(),
      append: `${base}x`,
      truncate: base.slice(0, -1),
      pad: ` ${base} `,
      nul: `${base}\u0000`,
      fullwidth: base.replace(/[a-z]/, c => String.fromCharCode(c.charCodeAt(0) + 0xfee0)),
      digest: hashToken(base)
    }[spec.mutate]
  }
  carried.push(token)
  return token
}

const escapeAll = (s: string) => [...s].map(c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')

function payloadOf (b: Body, carried: string[]): string | Buffer | undefined {
  switch (b.kind) {
    case 'none': return undefined
    case 'object': {
      const o: Record<string, unknown> = { ...b.extra }
      if (b.token !== null) o.token = b.token.kind === 'token' ? tokenOf(b.token.spec, carried) : b.token.value
      if (b.sessionId !== null) o.sessionId = b.sessionId.kind === 'live' ? live[b.sessionId.index % live.length]!.id : b.sessionId.value
      return JSON.stringify(o)
    }
    case 'duplicate':
      return `{"token":${JSON.stringify(tokenOf(b.first, carried))},"token":${JSON.stringify(tokenOf(b.second, carried))}}`
    case 'raw': return b.text
    case 'bytes': return Buffer.from(b.bytes)
    case 'oversize': return `{"token":${JSON.stringify(tokenOf(b.token, carried))}${' '.repeat(b.size)}}`
    case 'utf16': return Buffer.from(JSON.stringify({ token: tokenOf(b.token, carried) }), 'utf16le')
    case 'escaped': return `{"token":"${escapeAll(tokenOf(b.token, carried))}"}`
  }
}

function urlOf (route: Request['route']): string {
  if (typeof route === 'string') return route
  if ('user' in route) return `/users/${users[route.user % users.length]}/sessions/revoke`
  // every byte percent-encoded: a lone surrogate cannot stop the test itself
  return `/users/${[...Buffer.from(route.raw)].map(b => `%${b.toString(16).padStart(2, '0')}`).join('')}/sessions/revoke`
}

function headersOf (r: Request, carried: string[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = { ...r.extraHeaders }
  if (r.contentType !== undefined) headers['content-type'] = r.contentType
  if (r.contentEncoding !== undefined) headers['content-encoding'] = r.contentEncoding
  if (r.apiKey === 'right') headers['x-api-key'] = apiKey
  else if (r.apiKey === 'wrong') headers['x-api-key'] = `${apiKey.slice(0, -1)}_`
  else if (r.apiKey === 'empty') headers['x-api-key'] = ''
  else if (r.apiKey === 'twice') headers['x-api-key'] = [apiKey, apiKey]
  if (r.authorization !== null) {
    const a = r.authorization
    const inHeader: string[] = []
    const value = a.kind === 'literal' ? tokenOf({ kind: 'literal', value: a.value }, inHeader) : `${a.scheme}${a.pad}${tokenOf(a.spec, inHeader)}`
    // whitespace around a header value is not part of it (RFC 9110 OWS)
    carried.push(...inHeader, ...inHeader.map(c => c.trim()))
    headers.authorization = r.duplicateAuthorization ? [value, value] : value
  }
  return headers
}

// ---- what must hold ------------------------------------------------------

async function snapshot (): Promise<string> {
  const rows = await db.sql<Array<{ id: string }>>`SELECT id FROM platform.user_sessions ORDER BY id`
  const userCount = await db.sql<Array<{ n: number }>>`SELECT count(*)::int AS n FROM platform.users`
  // limiter counters move with every request by design; they are not state
  const keys = (await keysUnder(redis, prefix)).filter(k => !k.startsWith(`${prefix}rl:`)).sort()
  return JSON.stringify({ rows: rows.map(r => r.id), users: userCount[0]!.n, keys })
}

// 414: a path parameter over the router's 100 characters, refused before routing
function decodable (path: string): boolean {
  try {
    decodeURIComponent(path)
    return true
  } catch {
    return false
  }
}

const ALLOWED = new Set([200, 400, 401, 403, 404, 413, 414, 415])
const stats = new Map<number, number>()

async function check (r: Request): Promise<void> {
  const carried: string[] = []
  const url = urlOf(r.route)
  // as the request line is read: dot segments resolved, query and fragment dropped
  const path = new URL(url, 'http://localhost').pathname
  const payload = payloadOf(r.body, carried)
  const headers = headersOf(r, carried)
  const liveBefore = [...live]
  const before = await snapshot()

  let res
  try {
    res = await app.inject({ method: r.method as 'POST', url, headers, ...(payload === undefined ? {} : { payload }) })
  } catch (err) {
    // A header no HTTP client can send (control characters, non-Latin-1) is
    // refused by Node before the service sees it.
    const code = (err as { code?: string }).code ?? ''
    if (['ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN', 'ERR_HTTP_INVALID_HEADER_VALUE'].includes(code)) return
    throw err
  }
  stats.set(res.statusCode, (stats.get(res.statusCode) ?? 0) + 1)

  assert.ok(res.statusCode < 500, `${r.method} ${url} answered ${res.statusCode}: ${res.payload.slice(0, 200)}`)
  assert.ok(ALLOWED.has(res.statusCode), `unexpected ${res.statusCode} for ${r.method} ${url}: ${res.payload.slice(0, 200)}`)
  // Where no route matches, the root's not-found route answers (404, or a 4xx
  // from reading the body), and a path the router cannot decode is a 400 (or
  // 414) before routing: no guard is involved and nothing is looked up.
  const routed = r.method === 'POST' && decodable(path) &&
    /^\/(sessions\/validate|sessions\/revoke|users\/[^/]+\/sessions\/revoke)$/.test(path)
  if (r.apiKey !== 'right' && r.apiKey !== 'twice' && routed) assert.ok([403, 414].includes(res.statusCode), `without the right key, nothing but 403 (${res.statusCode})`)

  for (const s of everIssued) {
    assert.ok(!res.payload.includes(s.token), 'no issued token in an answer')
    assert.ok(!res.payload.includes(s.digest), 'no token digest in an answer')
  }
  assert.ok(!res.payload.includes(apiKey), 'no API key in an answer')

  if (res.statusCode === 200 && path === '/sessions/validate') {
    const answer = res.json<{ valid: boolean, session: { id: string } }>()
    assert.equal(answer.valid, true)
    const session = liveBefore.find(s => s.id === answer.session.id)
    assert.ok(session !== undefined, 'valid only for a live issued session')
    assert.ok(carried.includes(session.token), 'and only when the request carried exactly its token')
  }
  if (res.statusCode === 401) {
    assert.equal(path, '/sessions/validate', 'only validation answers 401')
    const reason = res.json<{ reason: string }>().reason
    assert.ok(reason === 'not_found' || reason === 'expired')
  } else if (res.statusCode >= 400 && r.method !== 'HEAD') {
    const error = res.json<{ statusCode: number, message: string }>()
    assert.equal(error.statusCode, res.statusCode, 'Fastify\'s error shape')
    assert.equal(typeof error.message, 'string')
  }

  if (res.statusCode >= 400) {
    assert.equal(await snapshot(), before, `a refused request (${res.statusCode}) changed no row and no key`)
  } else if (path !== '/sessions/validate') {
    // a revocation went through: let its notifications land, then top up
    await sleep(30)
    await refreshLive()
  }
}

t.test(`${NUM_RUNS} random requests over the HTTP surface`, async t => {
  await fc.assert(fc.asyncProperty(request, check), { numRuns: NUM_RUNS, endOnFailure: true })
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...stats].sort((a, b) => a[0] - b[0])))}`)
  t.ok((stats.get(200) ?? 0) > 0 && (stats.get(400) ?? 0) > 0 && (stats.get(401) ?? 0) > 0 && (stats.get(403) ?? 0) > 0,
    'the runs reached answers, refusals, rejections and the key guard')
})

t.test('no token, digest or API key in any log line either', async t => {
  const all = logs.join('')
  for (const s of everIssued) {
    t.notOk(all.includes(s.token))
    t.notOk(all.includes(s.digest))
  }
  t.notOk(all.includes(apiKey))
})
