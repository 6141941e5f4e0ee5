// Runs a script of the project (`node scripts/with-node.mjs <file | bin> [args]`)
// on a Node new enough for it. On Node 22 or later it runs it in this very
// process. On an older Node it fetches Node 24 from the npm registry once
// (the package node-<platform>-<arch>@24) into a cache folder, says so in one
// line, and runs it there; SESSION_VALIDATOR_NODE_FETCH=0 turns that off (the
// old one-line refusal instead). Plain syntax: it must parse on old Nodes too.
import { spawn, spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const MIN_MAJOR = 22
const root = fileURLToPath(new URL('..', import.meta.url))

// A file (scripts/build.mjs, dist/server.js) or the name of an installed bin (tap, eslint, tsc).
function target (name) {
  if (name === undefined) {
    process.stderr.write('usage: node scripts/with-node.mjs <file | bin> [args...]\n')
    process.exit(2)
  }
  if (/[/\\]|\.[cm]?[jt]s$/.test(name)) return resolve(name)
  const bin = join(root, 'node_modules', '.bin', name)
  if (!existsSync(bin)) {
    process.stderr.write(`session-validator: no ${name} in node_modules/.bin: run npm ci first\n`)
    process.exit(1)
  }
  return realpathSync(bin)
}

const [, , name, ...args] = process.argv
const file = target(name)
const major = Number(process.versions.node.split('.')[0])

if (major >= MIN_MAJOR) {
  // In this process: no second Node, no signals to pass on, nothing changes on a current Node.
  process.argv.splice(1, 2, file)
  await import(pathToFileURL(file).href)
} else if (process.env.SESSION_VALIDATOR_NODE_FETCH === '0') {
  await import('./require-node.mjs')
} else {
  const node = await newerNode()
  run(node, [file, ...args])
}

function cacheFolder () {
  if (process.env.SESSION_VALIDATOR_NODE_CACHE) return resolve(process.env.SESSION_VALIDATOR_NODE_CACHE)
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'session-validator', 'node24')
}

function shown (path) {
  const home = homedir()
  return path.startsWith(home + '/') ? '~' + path.slice(home.length) : path
}

// One line per npm command: a main script whose pre-script (or a post-script
// whose main script) already went through this launcher says nothing more.
function said () {
  const event = process.env.npm_lifecycle_event
  if (event === undefined || process.env.npm_config_ignore_scripts === 'true') return false
  let scripts = {}
  try {
    scripts = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts ?? {}
  } catch {}
  const before = event.startsWith('post') ? event.slice(4) : event.startsWith('pre') ? undefined : `pre${event}`
  return before !== undefined && (scripts[before] ?? '').includes('with-node.mjs')
}

function executable (path) {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

async function newerNode () {
  const platform = process.platform === 'win32' ? 'win' : process.platform
  const pkg = `node-${platform}-${process.arch}`
  const cache = cacheFolder()
  const binary = (folder) => join(folder, 'node_modules', pkg, 'bin', process.platform === 'win32' ? 'node.exe' : 'node')
  const off = 'SESSION_VALIDATOR_NODE_FETCH=0 turns this off'
  if (executable(binary(cache))) {
    if (!said()) {
      let version = '24'
      try {
        version = JSON.parse(readFileSync(join(cache, 'node_modules', pkg, 'package.json'), 'utf8')).version
      } catch {}
      process.stderr.write(`session-validator: this is Node ${process.version}; running under Node v${version} from ${shown(cache)} (${off})\n`)
    }
    return binary(cache)
  }
  process.stderr.write(`session-validator: this is Node ${process.version}; fetching Node 24 (${pkg}@24 from the npm registry: a download of about 50 MB, 190 MB unpacked) into ${shown(cache)}, once, and running under it (${off})\n`)
  // Into a folder of its own beside the cache, renamed into place only when
  // complete: two commands fetching at once never see half a Node.
  mkdirSync(dirname(cache), { recursive: true })
  const fresh = mkdtempSync(join(dirname(cache), `.${basename(cache)}-fetch-`))
  try {
    fetchInto(fresh, pkg)
    place(fresh, cache, binary)
  } finally {
    rmSync(fresh, { recursive: true, force: true })
  }
  return binary(cache)
}

function fetchInto (folder, pkg) {
  const npm = process.env.npm_execpath
  const [command, first] = npm !== undefined && /\.[cm]?js$/.test(npm) ? [process.execPath, [npm]] : [process.platform === 'win32' ? 'npm.cmd' : 'npm', []]
  // the npm settings of the command that runs us, but none that would install elsewhere
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_config_(global|location|workspaces?|include_workspace_root|dry_run)$/i.test(key)))
  const install = spawnSync(command, [...first, 'install', '--prefix', folder, '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
    '--ignore-scripts', '--loglevel=error', `${pkg}@24`], { encoding: 'utf8', env })
  const got = join(folder, 'node_modules', pkg, 'bin', process.platform === 'win32' ? 'node.exe' : 'node')
  const check = install.status === 0 ? spawnSync(got, ['-p', 'process.versions.node'], { encoding: 'utf8' }) : undefined
  if (check === undefined || check.status !== 0 || Number(check.stdout.split('.')[0]) < MIN_MAJOR) {
    process.stderr.write((install.stderr || install.error?.message || '') + '\n')
    process.stderr.write(`session-validator: could not fetch ${pkg}@24 (npm ${install.status === 0 ? 'installed something that does not run' : `exited ${install.status}`}); install Node 24 from https://nodejs.org and put it first on PATH\n`)
    process.exit(1)
  }
}

// The rename is atomic; when another command got there first its Node is as
// good as ours (checked the same way), unless what is there is a broken
// leftover (a fetch of old, not by this launcher): that is moved aside first.
function place (fresh, cache, binary) {
  try {
    renameSync(fresh, cache)
    return
  } catch (err) {
    if (!['EEXIST', 'ENOTEMPTY', 'EPERM'].includes(err.code)) throw err
  }
  if (executable(binary(cache))) return
  const aside = mkdtempSync(join(dirname(cache), `.${basename(cache)}-broken-`))
  renameSync(cache, join(aside, 'old'))
  renameSync(fresh, cache)
  rmSync(aside, { recursive: true, force: true })
}

function run (node, argv) {
  const env = { ...process.env, PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}` }
  const child = spawn(node, argv, { stdio: 'inherit', env })
  // npm passes a signal to its script, a terminal to the whole group: once to the child is enough
  const passed = new Set()
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP']
  const pass = (signal) => {
    if (passed.has(signal) || child.exitCode !== null) return
    passed.add(signal)
    child.kill(signal)
  }
  for (const signal of signals) process.on(signal, pass)
  child.once('exit', (code, signal) => {
    for (const s of signals) process.off(s, pass)
    if (signal !== null) process.kill(process.pid, signal)
    else process.exit(code ?? 1)
  })
}
