import { spawnSync } from 'node:child_process'
import { createConnection } from 'node:net'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { testApp } from '../helpers/app.js'
import { ROOT } from '../helpers/process.js'

// The OpenAPI document the service really serves, linted by Redocly's CLI
// with its recommended ruleset, errors and warnings alike: with API keys and
// the metrics token off, and on. Every route registered, now or later, is in
// that document, so a route without an operationId, a 4xx or its security
// fails here.

const KEY = 'k'.repeat(24)
const TOKEN = 'm'.repeat(24)
const db = await freshDatabase(t)
const documents: Record<string, unknown> = {}
for (const [name, env] of [['open', {}], ['keyed', { SERVICE_API_KEYS: KEY, METRICS_TOKEN: TOKEN }]] as const) {
  const { app } = await testApp(t, { databaseUrl: db.url, env, waitForCache: false })
  const res = await app.inject({ method: 'GET', url: '/docs/json', headers: { 'x-api-key': KEY } })
  if (res.statusCode !== 200) throw new Error(`${name}: /docs/json answered ${res.statusCode}`)
  documents[name] = res.json()
}

const dir = await mkdtemp(join(tmpdir(), 'sv-redocly-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await writeFile(join(dir, 'redocly.yaml'), 'extends:\n  - recommended\n')
// Loaded before the CLI: any attempt to reach the network is written down and
// refused, so a lint that passes here passes offline.
await writeFile(join(dir, 'offline.mjs'), `
import net from 'node:net'
import dns from 'node:dns'
import { appendFileSync } from 'node:fs'
const note = what => appendFileSync(${JSON.stringify(join(dir, 'network.log'))}, what + '\\n')
const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (...args) {
  const o = typeof args[0] === 'object' && args[0] !== null ? args[0] : { port: args[0], host: args[1] }
  if (o.path === undefined) { note('connect ' + (o.host ?? '') + ':' + (o.port ?? '')); throw new Error('offline') }
  return connect.apply(this, args)
}
const lookup = dns.lookup
dns.lookup = function (host, ...rest) { note('lookup ' + host); return lookup.call(this, 'invalid.invalid', ...rest) }
`)

interface Problem { ruleId: string, severity: string, message: string, location: Array<{ pointer: string }> }

async function lint (name: string, doc: unknown): Promise<{ problems: Problem[], network: string, status: number | null, stderr: string }> {
  await writeFile(join(dir, `${name}.json`), JSON.stringify(doc))
  await rm(join(dir, 'network.log'), { force: true })
  const res = spawnSync(process.execPath, ['--import', join(dir, 'offline.mjs'), join(ROOT, 'node_modules/@redocly/cli/bin/cli.js'),
    'lint', `${name}.json`, '--format=json'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', HOME: dir, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', CI: 'true' }
  })
  const out = JSON.parse(res.stdout) as { problems: Problem[] }
  const network = await readFile(join(dir, 'network.log'), 'utf8').catch(() => '')
  return { problems: out.problems, network, status: res.status, stderr: res.stderr }
}

const describe = (problems: Problem[]) => problems.map(p => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`)

for (const [name, doc] of Object.entries(documents)) {
  t.test(`the served document (${name === 'open' ? 'API keys and metrics token off' : 'API keys and metrics token on'}) passes Redocly's recommended ruleset, offline`, async t => {
    const { problems, network, status, stderr } = await lint(name, doc)
    t.same(describe(problems), [], 'no error and no warning')
    t.equal(status, 0, 'redocly lint exits 0', { stderr })
    t.equal(network, '', 'and it tried no connection and no lookup')
  })
}

t.test('the lint catches what it must: an operation without operationId, security or a 4xx', async t => {
  type Doc = { paths: Record<string, Record<string, { operationId?: string, security?: unknown, responses: Record<string, unknown> }>> }
  const broken = structuredClone(documents.keyed) as Doc
  const op = broken.paths['/sessions/validate']!.post!
  delete op.operationId
  delete op.security
  for (const status of Object.keys(op.responses)) if (status.startsWith('4')) delete op.responses[status]
  const { problems } = await lint('broken', broken)
  t.same([...new Set(problems.map(p => p.ruleId))].sort(), ['operation-4xx-response', 'operation-operationId', 'security-defined'])
})

t.test('the 431 every operation documents is what the server answers to oversized headers', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, waitForCache: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const answer = await new Promise<string>((resolve, reject) => {
    let data = ''
    const socket = createConnection(port, '127.0.0.1', () => {
      socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`)
    })
    socket.on('data', d => { data += d })
    socket.on('close', () => resolve(data))
    socket.on('error', reject)
  })
  t.match(answer, /^HTTP\/1\.1 431 /)
  t.match(answer, /"statusCode":431/)
})
