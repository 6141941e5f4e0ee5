// The contract's token rule (1-512 visible ASCII characters, 0x21-0x7E),
// checked before any request: no session can have a token that breaks it.
const TOKEN_PATTERN = /^[\x21-\x7e]{1,512}$/

export function isWellFormedToken (token: unknown): token is string {
  return typeof token === 'string' && TOKEN_PATTERN.test(token)
}
