import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { testApp } from '../helpers/app.js'

const db = await freshDatabase(t)
const { app } = await testApp(t, { databaseUrl: db.url })

interface Operation { responses?: Record<string, unknown>, requestBody?: { required?: boolean }, security?: unknown }
type Document = { openapi: string, paths: Record<string, Record<string, Operation>> }

const res = await app.inject({ method: 'GET', url: '/docs/json' })
const doc = res.json<Document>()

t.test('/docs/json is an OpenAPI 3 document', async t => {
  t.equal(res.statusCode, 200)
  t.match(doc.openapi, /^3\./)
})

t.test('every route is listed with its responses', async t => {
  const expected: Array<[string, string, string[]]> = [
    ['post', '/sessions/validate', ['200', '401', '400', '413', '503']],
    ['post', '/sessions/revoke', ['200', '400', '503']],
    ['post', '/users/{userId}/sessions/revoke', ['200', '400', '503']],
    ['get', '/users/{userId}/sessions', ['200', '400', '503']],
    ['get', '/healthz', ['200']],
    ['get', '/readyz', ['200', '503']],
    ['get', '/healthz/redis', ['200', '503']],
    ['get', '/metrics', ['200', '431']]
  ]
  for (const [method, path, statuses] of expected) {
    const operation = doc.paths[path]?.[method]
    t.ok(operation, `${method.toUpperCase()} ${path} is listed`)
    for (const status of statuses) t.ok(operation?.responses?.[status], `${method.toUpperCase()} ${path} documents ${status}`)
  }
  const body = doc.paths['/sessions/validate']?.post?.requestBody
  t.ok(body, 'the validate body is documented')
  t.equal(body?.required, false, 'and optional: a Bearer-only call sends none')
})

t.test('the document describes the service, not itself', async t => {
  t.notOk(doc.paths['/docs/json'], '/docs/json is hidden')
  const listed = Object.keys(doc.paths).sort()
  t.same(listed, ['/forward-auth', '/healthz', '/healthz/redis', '/metrics', '/readyz', '/sessions/revoke', '/sessions/validate', '/users/{userId}/sessions', '/users/{userId}/sessions/revoke'])
})

t.test('with SERVICE_API_KEYS set the document needs a key like the API does', async t => {
  const key = 'k'.repeat(24)
  const { app: guarded } = await testApp(t, { databaseUrl: db.url, env: { SERVICE_API_KEYS: key } })
  t.equal((await guarded.inject({ method: 'GET', url: '/docs/json' })).statusCode, 403)
  const ok = await guarded.inject({ method: 'GET', url: '/docs/json', headers: { 'x-api-key': key } })
  t.equal(ok.statusCode, 200)
  const keyed = ok.json<Document>()
  t.same(keyed.paths['/sessions/validate']?.post?.security, [{ apiKey: [] }], 'the API routes declare the key')
  t.same(keyed.paths['/forward-auth']?.get?.security, [{ apiKey: [] }], 'so does the forward-auth check')
  t.same(keyed.paths['/healthz']?.get?.security, [], 'health routes declare none')
  t.same(keyed.paths['/metrics']?.get?.security, [], 'nor does /metrics without METRICS_TOKEN')
  t.same(doc.paths['/sessions/validate']?.post?.security, [], 'without SERVICE_API_KEYS nothing needs one')
})

t.test('with METRICS_TOKEN set /metrics declares its bearer token and its 401', async t => {
  const { app: tokened } = await testApp(t, { databaseUrl: db.url, env: { METRICS_TOKEN: 'm'.repeat(24) } })
  const withToken = (await tokened.inject({ method: 'GET', url: '/docs/json' })).json<Document & { components?: { securitySchemes?: Record<string, unknown> } }>()
  const metrics = withToken.paths['/metrics']?.get
  t.same(metrics?.security, [{ metricsToken: [] }])
  t.ok(metrics?.responses?.['401'], '401 is documented')
  t.same(withToken.components?.securitySchemes?.metricsToken, { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' })
  t.notOk(doc.paths['/metrics']?.get?.responses?.['401'], 'and without the token no 401 is promised')
  t.equal((await tokened.inject({ method: 'GET', url: '/metrics' })).statusCode, 401, 'the 401 is real')
})
