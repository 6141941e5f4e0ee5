// The contract's token rules, one source for the service and its client:
// src/token-rules.ts is the source, client/src/token-rules.ts a byte-for-byte
// copy (the client package builds alone; client/test/parsing.test.ts checks
// the two are the same). No imports, so that it compiles in both.

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
