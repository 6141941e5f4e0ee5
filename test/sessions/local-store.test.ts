import { createHash } from 'node:crypto'
import t from 'tap'
import fc from 'fast-check'
import { answerRenderer, sessionIdOf, userIdOf } from '../../src/sessions/answer.js'
import { createLocalCache, entryBytes, type LocalCache } from '../../src/sessions/local-cache.js'
import { createMetrics } from '../../src/metrics.js'
import { NO_EXTRA } from '../../src/sessions/session-record.js'
import { NO_EXTRA_FIELDS } from '../../src/config.js'

// The memory tier's own bookkeeping (its hash table, LRU order, user chains
// and byte count), against a plain model of what it must hold.
const render = answerRenderer(NO_EXTRA_FIELDS)
const key = (n: number) => createHash('sha256').update(`t${n}`).digest('binary')
const uuid = (prefix: string, n: number) => `${prefix}${String(n).padStart(7, '0')}-0000-4000-8000-000000000000`
const FAR = Date.now() + 3_600_000

function answerFor (n: number, user: number): string {
  return render({
    id: uuid('5', n),
    userId: uuid('a', user),
    expiresAt: FAR,
    createdAt: 0,
    lastActivityAt: null,
    ipAddress: null,
    userAgent: 'x'.repeat(n % 50),
    email: `u${user}@example.com`,
    firstName: null,
    lastName: null,
    username: null,
    extra: NO_EXTRA
  })
}

function store (maxEntries: number, maxBytes = 1e9): LocalCache {
  return createLocalCache({ maxEntries, maxBytes, ttlMs: 3_600_000 }, createMetrics())
}

const put = (cache: LocalCache, n: number, user: number) =>
  cache.set(key(n), { answer: answerFor(n, user), userId: uuid('a', user), until: FAR, stamp: 0 }, cache.seq)

t.test('an answer is found by its key, and its ids are read back from it', async t => {
  const cache = store(10)
  put(cache, 1, 7)
  const slot = cache.find(key(1), Date.now())
  t.ok(slot >= 0)
  t.equal(cache.answer(slot), answerFor(1, 7))
  t.equal(sessionIdOf(cache.answer(slot)), uuid('5', 1))
  t.equal(userIdOf(cache.answer(slot)), uuid('a', 7))
  t.equal(cache.find(key(2), Date.now()), -1)
  t.equal(cache.bytes, entryBytes(answerFor(1, 7)))
})

t.test('past its until, an entry is gone', async t => {
  const cache = store(10)
  cache.set(key(1), { answer: answerFor(1, 1), userId: uuid('a', 1), until: Date.now() + 50, stamp: 0 }, cache.seq)
  t.ok(cache.find(key(1), Date.now()) >= 0)
  t.equal(cache.find(key(1), Date.now() + 50), -1)
  t.equal(cache.size, 0)
})

t.test('a fill that an invalidation overtook is not stored', async t => {
  const cache = store(10)
  const seq = cache.seq
  cache.delete([key(9)])
  cache.set(key(1), { answer: answerFor(1, 1), userId: uuid('a', 1), until: FAR, stamp: 0 }, seq)
  t.equal(cache.size, 0)
})

t.test('due(): once per two activity generations', async t => {
  const cache = store(10)
  put(cache, 1, 1)
  const slot = cache.find(key(1), Date.now())
  t.equal(cache.due(slot, 5), true, 'never queued')
  t.equal(cache.due(slot, 5), false)
  t.equal(cache.due(slot, 6), false, 'queued in the last generation')
  t.equal(cache.due(slot, 7), true)
})

t.test('it holds what a model says it holds, through any sequence (property)', async t => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), n: fc.integer({ min: 0, max: 40 }), user: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ kind: fc.constant('find' as const), n: fc.integer({ min: 0, max: 40 }) }),
    fc.record({ kind: fc.constant('delete' as const), n: fc.integer({ min: 0, max: 40 }) }),
    fc.record({ kind: fc.constant('deleteUser' as const), user: fc.integer({ min: 0, max: 6 }) }),
    fc.record({ kind: fc.constant('clear' as const) })
  )
  fc.assert(fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
    const cache = store(max)
    // the model: key -> user, in recency order (oldest first)
    let model = new Map<number, number>()
    const touch = (n: number) => { const u = model.get(n)!; model.delete(n); model.set(n, u) }
    for (const o of ops) {
      if (o.kind === 'set') {
        put(cache, o.n, o.user)
        model.delete(o.n)
        model.set(o.n, o.user)
        if (model.size > max) model.delete(model.keys().next().value!)
      } else if (o.kind === 'find') {
        const slot = cache.find(key(o.n), Date.now())
        if (model.has(o.n)) {
          if (slot < 0 || cache.answer(slot) !== answerFor(o.n, model.get(o.n)!)) return false
          touch(o.n)
        } else if (slot !== -1) return false
      } else if (o.kind === 'delete') {
        cache.delete([key(o.n)])
        model.delete(o.n)
      } else if (o.kind === 'deleteUser') {
        cache.deleteUser(uuid('a', o.user))
        model = new Map([...model].filter(([, u]) => u !== o.user))
      } else {
        cache.clear()
        model.clear()
      }
      if (cache.size !== model.size) return false
    }
    let bytes = 0
    for (const [n, u] of model) {
      bytes += entryBytes(answerFor(n, u))
      const slot = cache.find(key(n), Date.now())
      if (slot < 0 || cache.answer(slot) !== answerFor(n, u)) return false
    }
    return cache.bytes === bytes
  }), { numRuns: 500 })
  t.pass('500 random sequences held')
})

t.test('the byte bound evicts the least recent first', async t => {
  // answers of one size: n = 1, 51, 101, 151
  const [a, b, c, d] = [1, 51, 101, 151]
  const one = entryBytes(answerFor(a, 1))
  const cache = store(100, one * 3)
  for (const n of [a, b, c]) put(cache, n, n)
  cache.find(key(a), Date.now())
  put(cache, d, d)
  t.equal(cache.find(key(b), Date.now()), -1, 'the least recent went')
  for (const n of [a, c, d]) t.ok(cache.find(key(n), Date.now()) >= 0)
  t.equal(cache.bytes, one * 3)
})
