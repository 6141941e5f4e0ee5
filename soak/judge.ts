// What an answer to POST /sessions/validate may be, judged from the outside:
// what the soak knows of the token (live, revoked, never issued) when it sent
// the request, and whether Postgres was reachable from that instance then.

export type Expectation =
  /** a live session, not being revoked: 200 valid, as that session and user */
  | 'valid'
  /** a revoke of it was under way while the request ran: 200 or 401 */
  | 'either'
  /** revoked before the request was sent, or never issued: 401 */
  | 'invalid'

export interface Sent {
  expect: Expectation
  /** Postgres was cut, partitioned or resetting for this instance at some point while the request ran */
  postgresFaulted: boolean
  /** the end-user address is the unknown-token flood's, whose failed lookups have a budget */
  flood: boolean
}

export interface Seen {
  status: number
  valid?: boolean | undefined
  /** session.id and user.id of a 200 */
  sessionId?: string | undefined
  userId?: string | undefined
}

export type Verdict =
  | { ok: true }
  /** a 503 for a valid session while Postgres was unreachable: right only if no cache holds it (asked of Redis afterwards) */
  | { ok: 'if-uncached' }
  | { ok: false, why: string }

const fail = (why: string): Verdict => ({ ok: false, why })

export function judge (sent: Sent, seen: Seen, identity?: { sessionId: string, userId: string }): Verdict {
  const { status } = seen
  if (status === 200) {
    if (seen.valid !== true) return fail('200 without valid: true')
    if (sent.expect === 'invalid') return fail('valid answer for a revoked or unknown token')
    if (identity !== undefined && (seen.sessionId !== identity.sessionId || seen.userId !== identity.userId)) return fail('valid answer naming another session or user')
    return { ok: true }
  }
  if (status === 401) {
    if (sent.expect === 'valid') return fail('401 for a valid session')
    return { ok: true }
  }
  if (status === 503) {
    if (!sent.postgresFaulted) return fail('503 while Postgres was reachable')
    return sent.expect === 'valid' ? { ok: 'if-uncached' } : { ok: true }
  }
  if (status === 429) {
    if (sent.flood && sent.expect === 'invalid') return { ok: true }
    return fail('429 outside the flood\'s own failed lookups')
  }
  return fail(`${status} answer`)
}
