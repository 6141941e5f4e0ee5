import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// README and the manual in docs/: every link leads to a file that exists and,
// when it names a heading, to that heading; every repository path named in
// backticks exists. What the benchmark and the soak write (`bench/results/`,
// `soak/results/`) is made by running them.
const root = fileURLToPath(new URL('../../', import.meta.url))
const pages = ['README.md', 'client/README.md', 'bench/README.md', ...readdirSync(join(root, 'docs')).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)]
const GENERATED = /^(?:bench|soak)\/results\//
const PATH = /^(?:\.\/)?((?:src|test|deploy|bench|soak|scripts|client|patches|migrations|docs)\/[\w.@/-]*[\w/])$/

// GitHub's anchors: lowercase, punctuation dropped, spaces as hyphens
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')
function anchors (page: string): Set<string> {
  const found = new Set<string>()
  let code = false
  for (const line of readFileSync(join(root, page), 'utf8').split('\n')) {
    if (line.startsWith('```')) code = !code
    const heading = /^#{1,6} (.*)$/.exec(line)
    if (!code && heading !== null) found.add(slug(heading[1]!))
  }
  return found
}

t.ok(pages.length >= 8, `${pages.length} pages: ${pages.join(', ')}`)
for (const page of pages) {
  t.test(page, async t => {
    const text = readFileSync(join(root, page), 'utf8')
    let links = 0
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!
      if (/^[a-z]+:/.test(target)) continue
      links++
      const [file = '', anchor] = target.split('#')
      const path = file === '' ? page : normalize(join(dirname(page), file))
      // outside the repository (the SPEC, beside it in CI and on the
      // developers' machines; not in every clone): not followed
      if (path.startsWith('..')) {
        t.comment(`${target}: outside the repository, not followed`)
        continue
      }
      if (!t.ok(existsSync(join(root, path)), `${target}: ${path} exists`)) continue
      if (anchor !== undefined) t.ok(anchors(path).has(anchor), `${target}: ${path} has the heading`)
    }
    for (const m of text.matchAll(/`([^`\s]+)`/g)) {
      const path = PATH.exec(m[1]!)?.[1]
      if (path === undefined || path.includes('*') || path.includes('<') || GENERATED.test(path)) continue
      t.ok(existsSync(join(root, path)), `\`${path}\` exists`)
    }
    t.comment(`${links} links`)
  })
}
