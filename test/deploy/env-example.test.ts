import { readFileSync } from 'node:fs'
import t from 'tap'
import { loadConfig } from '../../src/config.js'

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
// `NAME=value` is set; `# NAME=value` is listed but left out, for alternatives
// that cannot be set together (REDIS_URL or a cluster or Sentinel).
const lines = read('.env.example').split('\n')
const entries = (pattern: RegExp) => lines.flatMap(line => {
  const m = pattern.exec(line)
  return m === null ? [] : [[m[1]!, m[2]!] as [string, string]]
})
const example = new Map(entries(/^([A-Z_]+)=(.*)$/))
const listed = new Set([...example.keys(), ...entries(/^# ([A-Z_]+)=(.*)$/).map(([name]) => name)])
const source = read('src/config.ts')
const readByConfig = new Set([...source.matchAll(/\(env, '([A-Z_]+)'|env\.([A-Z_]+)/g)].map(m => m[1] ?? m[2]!))

t.test('.env.example lists every variable src/config.ts reads, and no other', async t => {
  t.ok(readByConfig.size >= 15, 'the variables were found in src/config.ts')
  t.same([...listed].sort(), [...readByConfig].sort())
})

t.test('its values are placeholders that pass validation', async t => {
  const config = loadConfig(Object.fromEntries(example))
  t.equal(config.port, 3000)
  t.equal(config.host, '::')
  for (const name of ['DATABASE_URL', 'REDIS_URL']) {
    t.match(new URL(example.get(name)!).password, /^%3C.*%3E$/, `${name}'s password is a <placeholder>`)
  }
  for (const [, name, value] of lines.map(line => /^#? ?([A-Z_]*PASSWORD)=(.*)$/.exec(line)).filter(m => m !== null)) {
    t.match(value, /^<[\w-]+>$/, `${name} holds a <placeholder>`)
  }
  for (const name of ['SERVICE_API_KEYS', 'METRICS_TOKEN']) {
    for (const value of example.get(name)!.split(',')) t.match(value, /^<[\w-]+>$/, `${name} holds a <placeholder>`)
  }
})
