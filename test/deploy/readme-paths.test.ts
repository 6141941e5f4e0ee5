import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'

// Every repository path README names (in backticks, or as a link target)
// exists: a newcomer following one finds the file. What the benchmark and the
// soak write (`bench/results/`, `soak/results/`) is made by running them.
const GENERATED = /^(?:bench|soak)\/results\//
const root = new URL('../../', import.meta.url)
const readme = readFileSync(new URL('README.md', root), 'utf8')
const PATH = /^(?:\.\/)?((?:src|test|deploy|bench|soak|scripts|client|patches|migrations|docs)\/[\w.@/-]*[\w/])$/
const named = new Set<string>()
for (const m of readme.matchAll(/`([^`\s]+)`|\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
  const path = PATH.exec(m[1] ?? m[2]!)?.[1]
  if (path !== undefined && !path.includes('*') && !path.includes('<') && !GENERATED.test(path)) named.add(path)
}

t.ok(named.size > 20, `README names ${named.size} paths`)
for (const path of named) t.ok(existsSync(new URL(path, root)), path)
