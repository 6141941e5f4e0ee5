// Why a request got no answer, from the error undici or Node raised: its code
// (`ECONNREFUSED`, `ENOTFOUND`, `ERR_TLS_CERT_ALTNAME_INVALID`, ...), never
// its message, and whether another attempt could change anything.
import type { Unavailable } from './types.js'

export interface Failure {
  unavailable: Unavailable
  /** A wrong host name or a certificate that does not verify stays wrong for the next attempt. */
  retriable: boolean
}

// OpenSSL's verification results that do not start with CERT_ (Node reports
// them as the code), and a handshake that failed outright.
const TLS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'HOSTNAME_MISMATCH', 'EPROTO'
])
// getaddrinfo's answers that say the name does not exist (EAI_AGAIN, a resolver that did not answer, may heal).
const NO_SUCH_NAME = new Set(['ENOTFOUND', 'EAI_NONAME', 'EAI_NODATA', 'EAI_FAIL'])

/** The first string `code` along the error's `cause` chain. */
export function codeOf (err: unknown): string | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
  }
  return undefined
}

export function failureOf (err: unknown): Failure {
  const cause = codeOf(err) ?? 'unknown'
  if (NO_SUCH_NAME.has(cause)) return { unavailable: { outcome: 'unavailable', reason: 'dns', cause }, retriable: false }
  if (cause === 'EAI_AGAIN') return { unavailable: { outcome: 'unavailable', reason: 'dns', cause }, retriable: true }
  if (TLS.has(cause) || /^(CERT_|ERR_TLS_|ERR_SSL_)/.test(cause)) {
    return { unavailable: { outcome: 'unavailable', reason: 'tls', cause }, retriable: false }
  }
  return { unavailable: { outcome: 'unavailable', reason: 'connection', cause }, retriable: true }
}
