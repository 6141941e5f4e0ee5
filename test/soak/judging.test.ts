import t from 'tap'
import { judge, type Sent } from '../../soak/judge.ts'
import { growth, MIN_POINTS, type Point } from '../../soak/leaks.ts'

// npm run soak judges every answer from the outside; these pin its rules.
const identity = { sessionId: 's1', userId: 'u1' }
const sent = (over: Partial<Sent> = {}): Sent => ({ expect: 'valid', postgresFaulted: false, flood: false, ...over })
const valid200 = { status: 200, valid: true, sessionId: 's1', userId: 'u1' }

t.test('soak: a valid session', async t => {
  t.same(judge(sent(), valid200, identity), { ok: true }, '200 naming it is right')
  t.match(judge(sent(), { ...valid200, userId: 'u2' }, identity), { ok: false, why: /another session or user/ }, 'a 200 naming another user is wrong')
  t.match(judge(sent(), { status: 401 }, identity), { ok: false, why: /401 for a valid session/ }, 'a 401 is wrong, Postgres down or not')
  t.match(judge(sent({ postgresFaulted: true }), { status: 401 }, identity), { ok: false, why: /401 for a valid session/ })
  t.match(judge(sent(), { status: 503 }, identity), { ok: false, why: /503 while Postgres was reachable/ }, 'a 503 with Postgres reachable is wrong')
  t.same(judge(sent({ postgresFaulted: true }), { status: 503 }, identity), { ok: 'if-uncached' }, 'a 503 with Postgres unreachable is right only if no cache holds it')
  t.match(judge(sent(), { status: 429 }, identity), { ok: false, why: /429/ }, 'normal traffic is never throttled')
  t.match(judge(sent({ postgresFaulted: true }), { status: 500 }, identity), { ok: false, why: /500 answer/ }, 'any other 5xx is wrong')
})

t.test('soak: a revoked or never-issued token', async t => {
  const invalid = sent({ expect: 'invalid' })
  t.same(judge(invalid, { status: 401 }), { ok: true })
  t.match(judge(invalid, valid200), { ok: false, why: /valid answer for a revoked or unknown token/ }, 'valid is the one wrong answer that matters most')
  t.match(judge({ ...invalid, postgresFaulted: true }, valid200), { ok: false })
  t.same(judge({ ...invalid, postgresFaulted: true }, { status: 503 }), { ok: true }, '503 while Postgres is unreachable')
  t.match(judge(invalid, { status: 503 }), { ok: false }, 'but not while it is reachable')
  t.same(judge({ ...invalid, flood: true }, { status: 429 }), { ok: true }, 'the flood\'s own lookups may be throttled')
  t.match(judge(invalid, { status: 429 }), { ok: false }, 'nobody else\'s')
  t.match(judge(invalid, { status: 200, valid: false }), { ok: false, why: /200 without valid/ })
})

t.test('soak: a session whose revoke was under way may be answered either way', async t => {
  const either = sent({ expect: 'either' })
  t.same(judge(either, valid200, identity), { ok: true })
  t.same(judge(either, { status: 401 }, identity), { ok: true })
  t.same(judge({ ...either, postgresFaulted: true }, { status: 503 }, identity), { ok: true })
})

const series = (minutes: number, value: (s: number) => number): Point[] =>
  Array.from({ length: minutes * 30 }, (_, i) => ({ at: i * 2000, value: value(i * 2) }))
const MB = 1048576
// a heap's sawtooth: 30 MB of garbage collected every 16 s
const sawtooth = (s: number) => ((s % 16) / 16) * 30 * MB

t.test('soak: memory still growing is told from a garbage-collected sawtooth and from a burst given back', async t => {
  const tolerance = { share: 0.1, bytes: 8 * MB }
  t.equal(growth(series(2, s => 50 * MB + sawtooth(s)), 50 * MB, tolerance).growing, false, 'a flat sawtooth is not a leak')
  t.equal(growth(series(2, s => 50 * MB + sawtooth(s) + (s > 2 ? 40 * MB : 0)), 90 * MB, tolerance).growing, false, 'a step at the start of the half, then flat, is not still growing')
  const leak = growth(series(2, s => 50 * MB + sawtooth(s) + s * 0.2 * MB), 75 * MB, tolerance)
  t.equal(leak.growing, true, '200 KB a second, kept once idle, is')
  t.ok(leak.later - leak.earlier > 8 * MB, 'its floor rose')
  t.equal(growth(series(2, s => 50 * MB + sawtooth(s) + s * 0.2 * MB), 52 * MB, tolerance).growing, false, 'the same growth given back once idle is load, not a leak')
  t.equal(growth(series(30, s => 200 * MB + s * 0.05 * MB), 290 * MB, { share: 0.1, bytes: 16 * MB }).growing, true, 'a slow leak (50 KB a second) shows over a long run')
  t.equal(growth(series(0.2, s => s * MB), 100 * MB, tolerance).points < MIN_POINTS, true)
  t.equal(growth(series(0.2, s => s * MB), 100 * MB, tolerance).growing, false, 'too few samples judge nothing')
})
