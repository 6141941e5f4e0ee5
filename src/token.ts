// Session tokens: the digest of one, and (from token-rules.ts, shared with
// the client) its shape rule and the Bearer credential.
import { sha256Hex, sha256Latin1 } from './sha256.js'

export { bearerCredential, isWellFormedToken, TOKEN_RULE } from './token-rules.js'

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
