import t from 'tap'
import fc from 'fast-check'
import { decodeEntry, encodeEntry, LAYOUT } from '../../src/sessions/entry-codec.js'
import { packUserAgent } from '../../src/sessions/user-agents.js'
import { NO_EXTRA, type SessionRecord } from '../../src/sessions/session-record.js'

// The shared cache's entry: one Redis string, every field back as it went in.
const base: SessionRecord = {
  id: '8d5c6f0e-2c1a-4e49-9a39-0a8d3b1c2e4f',
  userId: '3f2b1a09-7e6d-4c5b-8a49-1b2c3d4e5f60',
  expiresAt: 1_767_225_600_123,
  createdAt: 1_764_547_200_456,
  lastActivityAt: 1_764_633_600_789,
  ipAddress: '203.0.113.17',
  userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  email: 'someone@example.com',
  firstName: 'Some',
  lastName: 'One',
  username: 'someone',
  extra: NO_EXTRA
}

const FRESH = 1_764_633_900_000

t.test('an entry decodes to the record, epoch and fresh-until it was encoded from', async t => {
  t.same(decodeEntry(encodeEntry(base, '42', FRESH), 0), { epoch: '42', record: base, freshUntil: FRESH })
})

t.test('a layout 1 entry (written before fresh-until) is still read, fresh for as long as Redis keeps it', async t => {
  const bytes = encodeEntry(base, '42', FRESH)
  // layout 1 is layout 2 without the six bytes after last_activity_at
  const at = 2 + 2 + 32 + 18
  const old = Buffer.concat([Buffer.of(1), bytes.subarray(1, at), bytes.subarray(at + 6)])
  t.same(decodeEntry(old, 0), { epoch: '42', record: base, freshUntil: Infinity })
})

t.test('absent values stay null, empty strings stay empty', async t => {
  const sparse = { ...base, lastActivityAt: null, ipAddress: null, userAgent: null, firstName: '', lastName: null, username: null }
  t.same(decodeEntry(encodeEntry(sparse, '1', FRESH), 0)?.record, sparse)
})

t.test('long and non-ASCII values round-trip; a user agent that is not plain ASCII is stored as it is', async t => {
  const ua = 'Mozilla/5.0 (Macintosh) — ünïcødé 🚀'.repeat(20)
  t.equal(packUserAgent(ua), undefined)
  const record = { ...base, userAgent: ua, firstName: 'Zoë 🚀'.repeat(40), email: `${'long'.repeat(100)}@example.com` }
  t.same(decodeEntry(encodeEntry(record, '7', FRESH), 0)?.record, record)
})

t.test('a typical browser session fits in 136 bytes (its user agent packed)', async t => {
  const bytes = encodeEntry(base, '12345', FRESH)
  t.ok(bytes.length <= 136, `${bytes.length} bytes`)
  t.ok(packUserAgent(base.userAgent!)!.length < 40, 'the user agent is a few fragments and its version numbers')
})

t.test('extra fields travel as JSON, and an entry for another count of them is not trusted', async t => {
  const record = { ...base, extra: ['org-1', 42, true, null, { plan: 'pro' }] }
  t.same(decodeEntry(encodeEntry(record, '3', FRESH), 5)?.record, record)
  t.equal(decodeEntry(encodeEntry(record, '3', FRESH), 4), undefined)
  t.equal(decodeEntry(encodeEntry(base, '3', FRESH), 1), undefined)
})

t.test('another layout, a truncated value or trailing bytes read as absent', async t => {
  const bytes = encodeEntry(base, '9', FRESH)
  t.equal(bytes[0], LAYOUT)
  t.equal(decodeEntry(Buffer.concat([Buffer.of(LAYOUT + 1), bytes.subarray(1)]), 0), undefined)
  for (let n = 0; n < bytes.length; n++) t.equal(decodeEntry(bytes.subarray(0, n), 0), undefined, `cut at ${n}`)
  t.equal(decodeEntry(Buffer.concat([bytes, Buffer.of(0)]), 0), undefined)
  t.equal(decodeEntry(Buffer.from('{"e":"1"}'), 0), undefined)
})

t.test('any record round-trips (property)', async t => {
  const text = fc.string({ unit: 'binary', maxLength: 300 })
  const ms = fc.integer({ min: 0, max: 2 ** 45 })
  fc.assert(fc.property(
    fc.uuid(), fc.uuid(), ms, ms, fc.option(ms), fc.option(text), fc.option(fc.oneof(text, fc.constantFrom(base.userAgent!))), text,
    fc.option(text), fc.option(text), fc.option(text), fc.stringMatching(/^[0-9]{1,19}$/),
    (id, userId, expiresAt, createdAt, lastActivityAt, ipAddress, userAgent, email, firstName, lastName, username, epoch) => {
      // lone surrogates do not survive UTF-8 anywhere (Postgres never hands one over)
      const ok = (s: string | null) => s === null || Buffer.from(s).toString() === s
      if (![ipAddress, userAgent, email, firstName, lastName, username].every(ok)) return
      const record = { id, userId, expiresAt, createdAt, lastActivityAt, ipAddress, userAgent, email, firstName, lastName, username, extra: NO_EXTRA }
      t.same(decodeEntry(encodeEntry(record, epoch, FRESH), 0), { epoch, record, freshUntil: FRESH })
    }
  ), { numRuns: 300 })
})
