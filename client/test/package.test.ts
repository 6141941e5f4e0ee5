import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { VERSION } from '../src/version.js'
import { createSession, createUser } from '../../test/helpers/fixtures.js'
import { tempDir } from '../../test/helpers/proxy-process.js'
import { startService } from './helpers/service.js'

// The package as a caller gets it: `npm pack` (its prepack builds) into a
// folder of the test's own, then projects of a caller's kind that install
// the tarball and compile against it with the repository's TypeScript, one
// strict ES module project that also runs every README example against the
// real service, one CommonJS project (NestJS's default settings). About a
// minute on a quiet machine; four compilations and eight processes take
// several times that on a loaded one.
t.setTimeout(600_000)
const run = promisify(execFile)
const CLIENT = fileURLToPath(new URL('..', import.meta.url))
const ROOT = join(CLIENT, '..')
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const manifest = JSON.parse(readFileSync(join(CLIENT, 'package.json'), 'utf8')) as { version: string, main: string, types: string }

const dir = tempDir(t, 'client-pack')
const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: CLIENT, maxBuffer: 16 << 20 })
const { filename, files } = (JSON.parse(packed) as Array<{ filename: string, files: Array<{ path: string }> }>)[0]!
const shipped = new Set<string>(files.map(f => f.path))

// A caller's project: the tarball unpacked where npm would put it, the
// package's own dependencies and the frameworks beside it (as npm would
// hoist them), linked from this repository's installs.
const project = join(dir, 'project')
const installed = join(project, 'node_modules', '@session-validator', 'client')
mkdirSync(dirname(installed), { recursive: true })
execFileSync('tar', ['-xzf', join(dir, filename), '-C', dirname(installed)])
renameSync(join(dirname(installed), 'package'), installed)
for (const [name, from] of [
  ['undici', join(CLIENT, 'node_modules', 'undici')],
  ['fastify', join(ROOT, 'node_modules', 'fastify')],
  ['express', join(ROOT, 'node_modules', 'express')],
  ['@types/node', join(ROOT, 'node_modules', '@types', 'node')],
  ['@types/express', join(ROOT, 'node_modules', '@types', 'express')]
] as const) {
  mkdirSync(dirname(join(project, 'node_modules', name)), { recursive: true })
  symlinkSync(from, join(project, 'node_modules', name))
}

async function tsc (tsconfig: string): Promise<string> {
  try {
    await run(process.execPath, [TSC, '-p', tsconfig], { cwd: project })
    return ''
  } catch (err) {
    return (err as { stdout?: string }).stdout ?? String(err)
  }
}

t.test('the tarball › what it holds', async t => {
  t.notOk(existsSync(join(ROOT, filename)) || existsSync(join(CLIENT, filename)), 'packed into the given folder, not the repository')
  t.equal(spawnSync('git', ['check-ignore', '-q', filename], { cwd: ROOT }).status, 0, 'and a .tgz packed into the repository is ignored')
  for (const file of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/fastify.js', 'dist/fastify.d.ts', 'dist/express.js', 'dist/express.d.ts']) {
    t.ok(shipped.has(file), file)
  }
  t.same([...shipped].filter(f => /^(test|scripts)\/|tsconfig/.test(f)), [], 'no tests, scripts or compiler settings')
  t.equal(manifest.version, VERSION, 'the user-agent\'s version is the package\'s')
  t.ok(shipped.has(manifest.main.replace('./', '')) && shipped.has(manifest.types.replace('./', '')), 'main and types point into it')
})

t.test('the tarball › every source map points at a file it holds', async t => {
  const maps = [...shipped].filter(f => f.endsWith('.map'))
  t.ok(maps.length >= 20, `${maps.length} maps`)
  const missing = maps.flatMap(map => {
    const { sources } = JSON.parse(readFileSync(join(installed, map), 'utf8')) as { sources: string[] }
    return sources.map(source => posix.join(posix.dirname(map), source)).filter(source => !shipped.has(source))
  })
  t.same(missing, [])
})

t.test('the tarball › its README links nothing it does not hold', async t => {
  const readme = readFileSync(join(installed, 'README.md'), 'utf8')
  const local = [...readme.matchAll(/\]\(([^)]+)\)/g)].map(m => m[1]!).filter(href => !/^(https?:|#)/.test(href))
  t.same(local.filter(href => !shipped.has(posix.normalize(href))), [])
})

// Every ```ts block of the README, compiled under --strict (and
// exactOptionalPropertyTypes) as a module of the caller's project. The names
// the examples take as given (a token, a client, a Fastify app) come from a
// fixture module, bound to the real service when they run.
const GIVEN = ['url', 'token', 'current', 'sessionId', 'userId', 'sessions', 'app'] as const
const readme = readFileSync(join(CLIENT, 'README.md'), 'utf8')
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map(m => m[1]!)

function given (example: string): string[] {
  return GIVEN.filter(name => new RegExp(`\\b${name}\\b`).test(example) &&
    !new RegExp(`\\b(const|let|function)\\s+${name}\\b|import[^\\n]*\\b${name}\\b[^\\n]*from`).test(example))
}

const src = join(project, 'src')
mkdirSync(src, { recursive: true })
writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'caller', private: true, type: 'module' }))
writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
  compilerOptions: {
    target: 'ES2023',
    module: 'NodeNext',
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    types: ['node'],
    outDir: 'out',
    rootDir: 'src'
  },
  include: ['src']
}))
writeFileSync(join(src, 'fixture.ts'), `
// What the README's examples take as given, from the test's environment.
import Fastify from 'fastify'
import { createSessionClient } from '@session-validator/client'

const env = (name: string): string => process.env[name] ?? ''
export const url = env('SV_URL')
export const token = env('SV_TOKEN')
export const current = env('SV_CURRENT')
export const sessionId = env('SV_SESSION_ID')
export const userId = env('SV_USER_ID')
export const sessions = createSessionClient({ url })
export const app = Fastify()
`)
writeFileSync(join(src, 'run.ts'), `
// Runs one example, then what it exported or routed, then closes what the fixture opened.
import { app, sessions, token } from './fixture.js'

const example = await import(process.argv[2]!) as { GET?: (request: Request) => Promise<Response> }
const said: Record<string, unknown> = {}
if (example.GET !== undefined) {
  const res = await example.GET(new Request('http://caller.test/api/me', { headers: { authorization: 'Bearer ' + token } }))
  said.GET = [res.status, await res.json()]
}
await app.ready()
if (app.hasRoute({ method: 'GET', url: '/me' })) {
  const res = await app.inject({ method: 'GET', url: '/me', headers: { authorization: 'Bearer ' + token } })
  said.me = [res.statusCode, res.json()]
}
await app.close()
await sessions.close()
console.log(JSON.stringify(said))
`)
examples.forEach((example, i) => {
  const names = given(example)
  const header = names.length === 0 ? '' : `import { ${names.join(', ')} } from './fixture.js'\n`
  writeFileSync(join(src, `readme-${i + 1}.ts`), `${header}${example}export {}\n`)
})
// What the types promise beyond the examples.
writeFileSync(join(src, 'types.ts'), `
import type { FastifyInstance } from 'fastify'
import { authOf, type CallOptions, type InvalidReason, type KnownInvalidReason, type Validation } from '@session-validator/client'
import { sessions } from './fixture.js'

// a deadline or a signal the caller may not have (exactOptionalPropertyTypes)
export async function withMaybe (token: string, timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<Validation> {
  const options: CallOptions = { timeoutMs, signal, headers: undefined }
  return await sessions.validate(token, options)
}
// a reason the service adds later is a string the type admits; the known ones are exactly these
export function describe (result: Validation): string {
  if (result.outcome !== 'invalid') return result.outcome
  if (result.reason === 'expired') return 'expired: sign in again'
  const later: InvalidReason = 'banned'
  return later === result.reason ? 'banned' : result.reason
}
export const known: Array<KnownInvalidReason> = ['not_found', 'expired', 'idle', 'malformed']
// @ts-expect-error not a known reason
export const unknown: KnownInvalidReason = 'banned'
// the extras declared once in AuthExtras (README) type request.auth, req.auth and authOf
export function routes (app: FastifyInstance): void {
  app.get('/org', { preHandler: app.requireSession }, async request => {
    const org: string | null = authOf(request).session.activeOrgId
    const maybe: string | null | undefined = request.auth?.session.activeOrgId
    return { org, maybe }
  })
}
export function expressRoute (req: import('express').Request): string | null | undefined {
  return req.auth?.session.activeOrgId
}
`)

t.test('a strict ES module project compiles every README example, and the types\' promises', async t => {
  t.ok(examples.length >= 8, `${examples.length} examples`)
  t.equal(await tsc('tsconfig.json'), '', 'tsc --strict: no errors')
})

t.test('every README example runs against the real service', async t => {
  const service = await startService(t)
  const results: Record<string, unknown> = {}
  for (let i = 0; i < examples.length; i++) {
    const user = await createUser(service.db.sql)
    const [a, b, c] = await Promise.all([createSession(service.db.sql, user), createSession(service.db.sql, user), createSession(service.db.sql, user)])
    const env = { PATH: process.env.PATH ?? '', SV_URL: service.url, SV_TOKEN: a.token, SV_CURRENT: b.token, SV_SESSION_ID: c.id, SV_USER_ID: user }
    const { stdout, stderr } = await run(process.execPath, [join(project, 'out', 'run.js'), `./readme-${i + 1}.js`], { cwd: project, env, timeout: 120_000 })
    results[`readme-${i + 1}`] = JSON.parse(stdout.trim().split('\n').at(-1)!)
    t.comment(`example ${i + 1}: ${stdout.trim().split('\n').at(-1)}${stderr === '' ? '' : ` (stderr: ${stderr.trim().slice(0, 200)})`}`)
  }
  const said = Object.values(results) as Array<{ GET?: [number, unknown], me?: [number, unknown] }>
  t.match(said.find(s => s.GET !== undefined), { GET: [200, { email: /@example\.com$/ }] }, 'the route handler example answers 200 for a live session')
  t.match(said.find(s => s.me !== undefined), { me: [200, { id: /^[0-9a-f-]{36}$/, email: /@example\.com$/ }] }, 'the Fastify example\'s /me answers 200 with the user')
})

t.test('a CommonJS project (module: commonjs, as NestJS sets it, or nodenext) resolves the package, its subpaths, and require()s it', async t => {
  const cjs = join(project, 'cjs')
  mkdirSync(cjs)
  writeFileSync(join(cjs, 'package.json'), JSON.stringify({ type: 'commonjs' }))
  writeFileSync(join(cjs, 'main.ts'), `
import { createSessionClient, type Validation } from '@session-validator/client'
import sessionAuth, { authOf } from '@session-validator/client/fastify'
import { requireSession } from '@session-validator/client/express'

const client = createSessionClient({ url: 'http://127.0.0.1:9' })
const kinds: Array<Validation['outcome']> = ['valid', 'invalid', 'unavailable']
console.log(JSON.stringify([typeof sessionAuth, typeof authOf, typeof requireSession(client), kinds.length]))
void client.close()
`)
  for (const module of ['commonjs', 'nodenext']) {
    writeFileSync(join(cjs, `tsconfig.${module}.json`), JSON.stringify({
      compilerOptions: { target: 'ES2022', module, strict: true, esModuleInterop: true, skipLibCheck: true, types: ['node'], outDir: `out-${module}` },
      files: ['main.ts']
    }))
    t.equal(await tsc(join(cjs, `tsconfig.${module}.json`)), '', `module: ${module} compiles`)
  }
  for (const module of ['commonjs', 'nodenext']) {
    const main = join(cjs, `out-${module}`, 'main.js')
    t.match(readFileSync(main, 'utf8'), /require\("@session-validator\/client"\)/, `${module}: a require() call`)
    const { stdout } = await run(process.execPath, [main], { cwd: cjs })
    t.same(JSON.parse(stdout), ['function', 'function', 'function', 3], `${module}: and Node loads the ES module through it`)
  }
})

t.test('nothing under the repository changed but client/dist', async t => {
  const { stdout } = await run('git', ['status', '--porcelain', '--untracked-files=all', '--ignored=no'], { cwd: ROOT })
  t.same(stdout.split('\n').filter(line => /\.tgz$/.test(line)), [], 'no tarball in the repository')
  t.ok(readdirSync(join(CLIENT, 'dist')).includes('index.js'))
})
