// `npm run build` compiles src/ to dist/ and stamps it with a digest of what it
// compiled; with --if-stale (npm start, npm test, npm run doctor) it compiles
// only when dist/ is missing or that digest changed. The image has no src/:
// there it does nothing, and production runs `node dist/server.js` as before.
import './require-node.mjs'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const stampFile = join(root, 'dist', '.build-stamp')

function files (dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)])
}

// Sources, compiler settings and the compiler's version: what decides the output.
function digest () {
  const hash = createHash('sha256')
  const inputs = [...files(join(root, 'src')), join(root, 'tsconfig.json'), join(root, 'tsconfig.build.json'),
    join(root, 'node_modules', 'typescript', 'package.json')].map(f => relative(root, f)).sort()
  for (const file of inputs) {
    hash.update(file).update('\0').update(existsSync(join(root, file)) ? readFileSync(join(root, file)) : '').update('\0')
  }
  return hash.digest('hex')
}

if (existsSync(join(root, 'src'))) {
  const wanted = digest()
  const stamp = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : undefined
  const built = existsSync(join(root, 'dist', 'server.js'))
  const ifStale = process.argv.includes('--if-stale')
  if (!ifStale || !built || stamp !== wanted) {
    if (ifStale) console.error(built ? 'src/ changed since dist/ was built: compiling it first' : 'dist/ is missing: compiling src/ first')
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
    if (tsc.status !== 0) process.exit(tsc.status ?? 1)
    writeFileSync(stampFile, wanted + '\n')
  }
}
