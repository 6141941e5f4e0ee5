import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import t from 'tap'
import { codeOf, failureOf } from '../src/failure.js'
import { retryAfterSeconds, tokenFrom } from '../src/index.js'
import { retryAfterMs } from '../src/retry-after.js'
import { isWellFormedToken as clientRule } from '../src/token-rules.js'
import { isWellFormedToken as serviceRule } from '../../src/token.js'

t.test('Retry-After › seconds, an HTTP date, or nothing usable', async t => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  t.equal(retryAfterMs('120', now), 120_000)
  t.equal(retryAfterMs(' 0 ', now), 0)
  t.equal(retryAfterMs(['3', '9'], now), 3000, 'the first of repeated headers')
  t.equal(retryAfterMs('Thu, 01 Jan 2026 00:00:02 GMT', now), 2000)
  t.equal(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now), 0, 'a date in the past is now')
  t.equal(retryAfterMs('soon', now), undefined)
  t.equal(retryAfterMs('-1', now), undefined)
  t.equal(retryAfterMs(undefined, now), undefined)
})

t.test('retryAfterSeconds › whole seconds, at least 1, 1 when unknown', async t => {
  t.equal(retryAfterSeconds(undefined), '1')
  t.equal(retryAfterSeconds(0), '1')
  t.equal(retryAfterSeconds(1000), '1')
  t.equal(retryAfterSeconds(1001), '2')
})

t.test('tokenFrom › Bearer first, then the named cookie', async t => {
  t.equal(tokenFrom({ authorization: 'Bearer abc' }), 'abc')
  t.equal(tokenFrom({ authorization: 'bearer   abc ' }), 'abc', 'scheme case and spaces as the service reads them')
  t.equal(tokenFrom(new Headers({ authorization: 'Bearer abc', cookie: 'sid=def' }), 'sid'), 'abc')
  t.equal(tokenFrom({ authorization: 'Basic xyz', cookie: 'sid=def' }, 'sid'), 'def', 'a non-Bearer Authorization falls back to the cookie')
  t.equal(tokenFrom({ authorization: 'Basic xyz' }, 'sid'), null, 'and without one is malformed')
  t.equal(tokenFrom({ authorization: 'Bearer a b' }), null)
  t.equal(tokenFrom({}, 'sid'), undefined)
  t.equal(tokenFrom({ cookie: 'other=1' }, 'sid'), undefined)
})

t.test('tokenFrom › cookies as browsers send them', async t => {
  t.equal(tokenFrom({ cookie: 'a=1;sid=tok;b=2' }, 'sid'), 'tok')
  t.equal(tokenFrom({ cookie: 'flag; sid=tok' }, 'sid'), 'tok', 'a pair without "=" is skipped')
  t.equal(tokenFrom({ cookie: 'sid=first; sid=second' }, 'sid'), 'first', 'the first of two (the most specific path)')
  t.equal(tokenFrom({ cookie: 'xsid=no; sid=yes' }, 'sid'), 'yes', 'names match whole')
  t.equal(tokenFrom({ cookie: 'sid="quoted"' }, 'sid'), 'quoted')
  t.equal(tokenFrom({ cookie: 'sid="' }, 'sid'), '"', 'a lone quote is a value, not quotes')
  t.equal(tokenFrom({ cookie: ['sid=arr'] }, 'sid'), 'arr')
})

// The client checks the contract's token rule before sending; the service
// checks it again. Two copies until one module serves both (issue 21): they
// must agree on every string, the edges above all.
t.test('the token rule › the client\'s and the service\'s agree', async t => {
  const edges = ['', '!', '~', ' ', '\x7f', 'a b', 'é', 'x'.repeat(512), 'x'.repeat(513), 'tok\n', '\ttok']
  for (const token of edges) t.equal(clientRule(token), serviceRule(token), JSON.stringify(token).slice(0, 20))
  fc.assert(fc.property(fc.string({ unit: 'binary-ascii', maxLength: 600 }), token => clientRule(token) === serviceRule(token)), { numRuns: 2000 })
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), token => clientRule(token) === serviceRule(token)), { numRuns: 500 })
})

t.test('failures › the error code along the cause chain names the reason, and whether to retry', async t => {
  const coded = (code: string, cause?: unknown) => Object.assign(new Error('x', { cause }), { code })
  t.same(failureOf(coded('ENOTFOUND')), { unavailable: { outcome: 'unavailable', reason: 'dns', cause: 'ENOTFOUND' }, retriable: false })
  t.same(failureOf(coded('EAI_AGAIN')), { unavailable: { outcome: 'unavailable', reason: 'dns', cause: 'EAI_AGAIN' }, retriable: true }, 'no resolver answered: may heal')
  for (const code of ['CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'SELF_SIGNED_CERT_IN_CHAIN', 'EPROTO']) {
    t.match(failureOf(coded(code)), { unavailable: { reason: 'tls', cause: code }, retriable: false }, code)
  }
  t.match(failureOf(new Error('wrapped', { cause: coded('ECONNRESET') })), { unavailable: { reason: 'connection', cause: 'ECONNRESET' }, retriable: true }, 'a code found on the cause')
  t.same(failureOf(new Error('no code')), { unavailable: { outcome: 'unavailable', reason: 'connection', cause: 'unknown' }, retriable: true })
  t.equal(codeOf('not an error'), undefined)
})

t.test('token rules › the client\'s are the service\'s file, byte for byte', async t => {
  const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8')
  t.equal(read('../src/token-rules.ts'), read('../../src/token-rules.ts'), 'cp src/token-rules.ts client/src/token-rules.ts after a change')
})
