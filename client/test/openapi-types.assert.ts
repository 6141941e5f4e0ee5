// Type test, run by `npm run typecheck`: the client's types are the service's
// OpenAPI document (client/src/openapi.ts, generated from a running service).
// A mismatch is a compile error on the line that names it.
import type { paths } from '../src/openapi.js'
import type { Extras, KnownInvalidReason, Session, SessionTarget, User, Valid } from '../src/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
// Operator-configured extra fields may come as an index signature one day;
// the named fields must still be exactly these.
type Named<T> = { [K in keyof T as string extends K ? never : K]: T[K] }

type Validate = paths['/sessions/validate']['post']
type ValidBody = Validate['responses'][200]['content']['application/json']
type InvalidBody = Validate['responses'][401]['content']['application/json']
type RevokeBody = NonNullable<paths['/sessions/revoke']['post']['requestBody']>['content']['application/json']
type RevokedBody = paths['/sessions/revoke']['post']['responses'][200]['content']['application/json']

export const sessionIsTheDocuments: Equal<Named<Session>, Named<ValidBody['session']>> = true
export const userIsTheDocuments: Equal<Named<User>, Named<ValidBody['user']>> = true
// The client knows every reason the service may give (and `malformed` besides);
// InvalidReason itself admits any string, for reasons added later.
export const everyReasonKnown: InvalidBody['reason'] extends KnownInvalidReason ? true : false = true
export const revokeTargetsAccepted: SessionTarget extends RevokeBody ? true : false = true
export const revokedIsACount: Equal<RevokedBody['revoked'], number> = true

// Declared extras are typed on the outcome; undeclared ones are not there.
type WithOrg = Valid<{ session: { activeOrgId: string | null } }>
export const extrasTyped: Equal<WithOrg['session']['activeOrgId'], string | null> = true
export const defaultIsPlain: Equal<Valid<Extras>['session'], Session> = true
// @ts-expect-error a field nobody declared
export const undeclared: Valid['session']['activeOrgId'] = null
