import { readFileSync } from 'node:fs'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { ConfigError } from '../../src/errors.js'

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
// `NAME=value` is set; `# NAME=value` is listed but left out: alternatives that
// cannot be set together (REDIS_URL or a cluster or Sentinel), and optional
// features that take a secret.
const lines = read('.env.example').split('\n')
const entries = (pattern: RegExp) => lines.flatMap(line => {
  const m = pattern.exec(line)
  return m === null ? [] : [[m[1]!, m[2]!] as [string, string]]
})
const example = new Map(entries(/^([A-Z_]+)=(.*)$/))
const commented = new Map(entries(/^# ([A-Z_]+)=(.*)$/))
const listed = new Set([...example.keys(), ...commented.keys()])
const source = read('src/config.ts')
const readByConfig = new Set([...source.matchAll(/\(env, '([A-Z_]+)'|env\.([A-Z_]+)/g)].map(m => m[1] ?? m[2]!))

t.test('.env.example lists every variable src/config.ts reads, and no other', async t => {
  t.ok(readByConfig.size >= 15, 'the variables were found in src/config.ts')
  t.same([...listed].sort(), [...readByConfig].sort())
})

t.test('copied as it is, it turns on no optional feature that takes a secret', async t => {
  const config = loadConfig(Object.fromEntries(example))
  t.equal(config.port, 3000)
  t.equal(config.host, '::')
  t.same(config.serviceApiKeys, [], 'no API keys: not the placeholders')
  t.equal(config.metricsToken, undefined, 'no metrics token')
  t.equal(config.redisUrl, undefined, 'no cache at a placeholder host')
  t.same(config.redisClusterNodes, [])
  t.same(config.redisSentinels, [])
  t.equal(config.databaseReadUrl, undefined, 'no replica')
  for (const name of ['SERVICE_API_KEYS', 'METRICS_TOKEN', 'REDIS_URL', 'DATABASE_READ_URL', 'REDIS_PASSWORD']) {
    t.ok(commented.has(name) && !example.has(name), `${name} is listed, commented out`)
  }
})

t.test('every secret in it is a <placeholder>', async t => {
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'DATABASE_READ_URL']) {
    const value = example.get(name) ?? commented.get(name)!
    t.match(new URL(value).password, /^%3C.*%3E$/, `${name}'s password is a <placeholder>`)
  }
  for (const [, name, value] of lines.map(line => /^#? ?([A-Z_]*PASSWORD)=(.*)$/.exec(line)).filter(m => m !== null)) {
    t.match(value, /^<[\w-]+>$/, `${name} holds a <placeholder>`)
  }
  for (const name of ['SERVICE_API_KEYS', 'METRICS_TOKEN']) {
    for (const value of commented.get(name)!.split(',')) t.match(value, /^<[\w-]+>$/, `${name} holds a <placeholder>`)
  }
})

t.test('uncommented without replacing the placeholder, a key or token stops the service', async t => {
  for (const name of ['SERVICE_API_KEYS', 'METRICS_TOKEN']) {
    t.throws(() => loadConfig({ ...Object.fromEntries(example), [name]: commented.get(name)! }),
      new ConfigError(name, 'holds a <placeholder> from .env.example'), name)
  }
})
