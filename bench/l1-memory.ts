// The memory tier's real footprint: 100,000 sessions shaped as the bench seeds
// them, put into the service's own L1 (the built code) in a process of their
// own, weighed as the JS heap plus the typed arrays' memory, and set beside
// the L1's own count (what LOCAL_CACHE_MAX_BYTES bounds). Run as a child with
// --expose-gc; prints one BENCH_JSON line.
import { createHash, randomUUID } from 'node:crypto'
import type * as LocalCacheModule from '../src/sessions/local-cache.ts'
import type * as AnswerModule from '../src/sessions/answer.ts'
import type * as MetricsModule from '../src/metrics.ts'
import type * as ConfigModule from '../src/config.ts'
import { distHref } from './dist.ts'
import { FIRST, LAST, USER_AGENTS } from './seed.ts'

export interface L1Memory {
  sessions: number
  /** heap and typed-array bytes the entries added, per session */
  measuredBytesPerSession: number
  /** the L1's own count per session (session_local_cache_bytes / entries) */
  countedBytesPerSession: number
  /** what the defaults allow: LOCAL_CACHE_MAX_ENTRIES, LOCAL_CACHE_MAX_BYTES */
  defaultEntries: number
  defaultBytes: number
}

const { createLocalCache } = await import(distHref('sessions/local-cache.js')) as typeof LocalCacheModule
const { answerRenderer } = await import(distHref('sessions/answer.js')) as typeof AnswerModule
const { createMetrics } = await import(distHref('metrics.js')) as typeof MetricsModule
const { loadConfig } = await import(distHref('config.js')) as typeof ConfigModule

const gc = (globalThis as { gc?: (options?: object) => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')
const footprint = () => {
  for (let i = 0; i < 3; i++) gc({ type: 'major', execution: 'sync' })
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}

const config = loadConfig({})
const n = config.localCacheMaxEntries
const cache = createLocalCache({ maxEntries: n, maxBytes: config.localCacheMaxBytes, ttlMs: 3_600_000 }, createMetrics())
const render = answerRenderer({ session: [], user: [] })
const before = footprint()
let userId = ''
// as bench/seed.ts seeds them: two sessions a user, a million sessions' numbering
for (let i = 1; i <= n; i++) {
  const u = 500_000 + Math.floor((i - 1) / 2)
  if (i % 2 === 1) userId = randomUUID()
  const record = {
    id: randomUUID(),
    userId,
    expiresAt: Date.now() + 30 * 86_400_000,
    createdAt: Date.now() - 86_400_000,
    lastActivityAt: Date.now() - 3_600_000,
    ipAddress: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    userAgent: USER_AGENTS[i % USER_AGENTS.length]!,
    email: `user${u}@example.com`,
    firstName: FIRST[u % FIRST.length]!,
    lastName: LAST[Math.floor(u / 8) % LAST.length]!,
    username: `user${u}`,
    extra: []
  }
  const key = createHash('sha256').update(`tok-${i}`).digest('binary')
  cache.set(key, { answer: render(record), userId, until: record.expiresAt, stamp: 0 }, cache.seq)
}
const after = footprint()
const result: L1Memory = {
  sessions: cache.size,
  measuredBytesPerSession: (after - before) / cache.size,
  countedBytesPerSession: cache.bytes / cache.size,
  defaultEntries: config.localCacheMaxEntries,
  defaultBytes: config.localCacheMaxBytes
}
process.stdout.write(`BENCH_JSON ${JSON.stringify(result)}\n`)
