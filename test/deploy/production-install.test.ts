import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freePort } from '../helpers/ports.js'
import { ROOT, startServer, waitForHttp } from '../helpers/process.js'

// What the Dockerfile does, without Docker: the compiled output and a clean
// production install of the lockfile, in a directory of their own, started as
// the image's CMD starts it.
// A cold npm cache makes `npm ci` slow: more than .taprc's 120 s per file.
t.setTimeout(360_000)

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, '')

t.test('the Dockerfile is the recipe reproduced here', async t => {
  t.match(dockerfile, /^FROM node:|^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-/m, 'a pinned Node base')
  t.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage')
  t.match(dockerfile, /npm ci --omit=dev/, 'production dependencies only')
  t.match(dockerfile, /^RUN npm run build:service$/m, 'the service alone: client/ is not in the image')
  t.match(dockerfile, /^COPY --from=build \/app\/dist \.\/dist$/m)
  t.match(dockerfile, /^COPY migrations \.\/migrations$/m)
  t.equal((dockerfile.match(/^COPY patches \.\/patches\nRUN npm ci/gm) ?? []).length, 2, 'the patches reach both installs')
  t.match(dockerfile, /^USER node$/m, 'runs as a non-root user')
  t.match(dockerfile, /^HEALTHCHECK .*\/healthz/m)
  t.match(dockerfile, /^CMD \["node", "dist\/server\.js"\]$/m)
})

const dir = mkdtempSync(join(tmpdir(), 'sv-image-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function run (what: string, command: string, args: string[], timeout: number): void {
  const res = spawnSync(command, args, { cwd: dir, encoding: 'utf8', timeout, env: { ...process.env, NODE_ENV: 'production' } })
  if (res.status !== 0) throw new Error(`${what} failed (${res.error?.message ?? `exit ${res.status}`}):\n${res.stdout}\n${res.stderr}`)
}

for (const file of ['package.json', 'package-lock.json']) cpSync(join(ROOT, file), join(dir, file))
cpSync(join(ROOT, 'migrations'), join(dir, 'migrations'), { recursive: true })
cpSync(join(ROOT, 'patches'), join(dir, 'patches'), { recursive: true })
run('tsc', process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], 120_000)
run('npm ci --omit=dev', 'npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], 240_000)

t.test('the production install holds no dev dependencies', async t => {
  t.ok(existsSync(join(dir, 'node_modules/fastify')), 'fastify is installed')
  for (const dev of ['typescript', 'tap', 'eslint', 'testcontainers']) t.notOk(existsSync(join(dir, 'node_modules', dev)), `${dev} is not`)
  // the root is an npm workspace; without client/ beside it npm ci leaves the client out
  t.notOk(existsSync(join(dir, 'node_modules/@session-validator/client')), 'nor is the client workspace')
})

t.test('the production install carries the postgres.js patch', async t => {
  // the ES module build is what the service loads
  const connection = readFileSync(join(dir, 'node_modules/postgres/src/connection.js'), 'utf8')
  t.match(connection, /return fetchArrayTypes\(\)\.catch\(noop\)/, 'the startup types query is no longer a dropped promise')
  t.match(connection, /\.catch\(authenticationFailed\)/, 'nor are the authentication handlers')
})

t.test('it starts without Redis, answers /healthz, and exits 0 on SIGTERM', async t => {
  const db = await freshDatabase(t)
  const port = await freePort()
  const server = startServer(t, { PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: db.url, NODE_ENV: 'production' }, dir)
  const base = `http://127.0.0.1:${port}`
  await waitForHttp(`${base}/healthz`, 30_000)
  t.equal((await fetch(`${base}/healthz`)).status, 200)
  t.equal((await fetch(`${base}/readyz`)).status, 200, 'ready: Postgres answers')
  t.match(server.stdout(), /REDIS_URL.* is not set/, 'the missing cache is logged as a warning')

  // the image's own HEALTHCHECK command, run as Docker would
  const healthcheck = JSON.parse(/^HEALTHCHECK .*?CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[]
  const probe = () => spawnSync(process.execPath, healthcheck.slice(1), { env: { PORT: String(port) }, timeout: 10_000 }).status
  t.equal(probe(), 0, 'the HEALTHCHECK passes while it serves')

  server.child.kill('SIGTERM')
  const code = await Promise.race([server.exited, new Promise(resolve => setTimeout(() => resolve('still running after 15 s'), 15_000))])
  t.equal(code, 0, 'exit code after SIGTERM', { stderr: server.stderr() })
  t.equal(probe(), 1, 'the HEALTHCHECK fails once it has stopped')
})
