import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { onCleanup } from './cleanup.ts'

// The compiled service. npm run bench builds it, then the bench copies dist/,
// migrations/ and package.json aside and runs that copy: someone rebuilding
// dist/ during a 20-minute run must not change what is measured halfway. The
// copy sits inside the repository so that packages resolve from its
// node_modules. Child processes find it through BENCH_BUILD.
const REPO = fileURLToPath(new URL('../', import.meta.url))

export function buildRoot (): string {
  return process.env.BENCH_BUILD ?? REPO
}

/** `from`: another checkout's build to measure (--build), with this one's packages. */
export function snapshotBuild (from = REPO): string {
  const parent = join(REPO, 'bench', 'results')
  mkdirSync(parent, { recursive: true })
  const root = mkdtempSync(join(parent, 'build-'))
  onCleanup('build copy', () => rmSync(root, { recursive: true, force: true }))
  cpSync(join(from, 'dist'), join(root, 'dist'), { recursive: true })
  cpSync(join(from, 'migrations'), join(root, 'migrations'), { recursive: true })
  cpSync(join(from, 'package.json'), join(root, 'package.json')) // dist reads its version
  process.env.BENCH_BUILD = root
  return root
}

// Importers load by this computed specifier and type the module by its
// sources, so the type checker reads src/ rather than the untyped dist/.
export function distHref (file: string): string {
  return pathToFileURL(join(buildRoot(), 'dist', file)).href
}

export function serverEntry (): string {
  return join(buildRoot(), 'dist', 'server.js')
}
