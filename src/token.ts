// Session tokens: the contract's shape rule, the Bearer credential, the digest.
import { sha256Hex, sha256Latin1 } from './sha256.js'

// 1-512 visible ASCII characters (0x21-0x7E), as the contract says.
const TOKEN_PATTERN = /^[\x21-\x7e]{1,512}$/
export const TOKEN_RULE = 'token must be 1-512 visible ASCII characters (0x21-0x7E)'

const BEARER = /^bearer(?: +|$)/i

// What follows the Bearer scheme in an Authorization header, trailing spaces
// dropped ('' when nothing does); undefined when the header is another scheme.
export function bearerCredential (authorization: string): string | undefined {
  const scheme = BEARER.exec(authorization)
  return scheme === null ? undefined : authorization.slice(scheme[0].length).trimEnd()
}

export function isWellFormedToken (token: unknown): token is string {
  return typeof token === 'string' && TOKEN_PATTERN.test(token)
}

// Lowercase hex SHA-256 of the token's UTF-8 bytes: what Studio stores in
// user_sessions.token. The raw token is never kept past this call.
export function hashToken (token: string): string {
  return sha256Hex(token)
}

// The same digest as 32 latin1 characters: the key of the in-process cache,
// half the heap of the hex (src/sessions/local-cache.ts).
export function tokenKey (token: string): string {
  return sha256Latin1(token)
}
