// For any server (Next.js route handlers, node:http, Express): the token from
// an incoming request's `Authorization: Bearer` or session cookie, validated.
import type { SessionClient } from './client.js'
import { bearerCredential, isWellFormedToken } from './token-rules.js'
import type { CallOptions, Extras, Validation } from './types.js'

/** Web `Headers` (fetch, Next.js) or Node's `IncomingHttpHeaders` (node:http, Express, Fastify). */
export type HeadersLike =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>

export interface AuthenticateOptions extends CallOptions {
  /** The cookie holding the session token; unset: only `Authorization: Bearer` is read. */
  cookie?: string | undefined
}

/** The request carried no token at all. */
export interface Missing {
  outcome: 'invalid'
  reason: 'missing'
}

export type Authentication<E extends Extras = Extras> = Validation<E> | Missing

const MISSING: Missing = Object.freeze({ outcome: 'invalid', reason: 'missing' })

function header (headers: HeadersLike, name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined
  const value = (headers as Record<string, string | string[] | undefined>)[name]
  return Array.isArray(value) ? value[0] : value
}

// The first `name=value` pair of the Cookie header, as sent (no decoding:
// tokens are visible ASCII already); a quoted value loses its quotes (RFC 6265).
function cookieValue (cookies: string, name: string): string | undefined {
  for (const pair of cookies.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
    const value = pair.slice(eq + 1).trim()
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
  }
  return undefined
}

/**
 * The request's token: `Authorization: Bearer <token>` first, else the named
 * cookie. `null`: an Authorization header that is not Bearer and no cookie
 * to fall back on; `undefined`: no token at all.
 */
export function tokenFrom (headers: HeadersLike, cookie?: string): string | null | undefined {
  const authorization = header(headers, 'authorization')
  // the service's own reading of the header (token-rules.ts): a Bearer
  // credential that breaks the token rule is malformed, not sent
  const credential = authorization === undefined ? undefined : bearerCredential(authorization)
  if (credential !== undefined && credential !== '') return isWellFormedToken(credential) ? credential : null
  if (cookie !== undefined) {
    const cookies = header(headers, 'cookie')
    const value = cookies === undefined ? undefined : cookieValue(cookies, cookie)
    if (value !== undefined) return value
  }
  return authorization === undefined ? undefined : null
}

/** Validates the token an incoming request carries; like `validate`, it never throws. */
export async function authenticate<E extends Extras> (client: SessionClient<E>, request: { headers: HeadersLike }, options: AuthenticateOptions = {}): Promise<Authentication<E>> {
  const { cookie, ...call } = options
  const token = tokenFrom(request.headers, cookie)
  if (token === undefined) return MISSING
  if (token === null) return { outcome: 'invalid', reason: 'malformed' }
  return await client.validate(token, call)
}
