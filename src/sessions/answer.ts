// The answer of a valid session as JSON text: rendered once per fill, kept
// with the entry, and sent as it is by every hit.
import type { ExtraFields } from '../config.js'
import type { SessionRecord } from './session-record.js'

export type RenderAnswer = (record: SessionRecord) => string

const text = (value: string) => JSON.stringify(value)
const nullable = (value: string | null) => value === null ? 'null' : JSON.stringify(value)
const iso = (ms: number) => `"${new Date(ms).toISOString()}"`
// the operator's extra values are already JSON values (extra-fields.ts normalizes them)
const extra = (value: unknown) => value === undefined || value === null ? 'null' : JSON.stringify(value) ?? 'null'

// The answer starts this way whatever the session, so its id is found without parsing.
const HEAD = '{"valid":true,"session":{"id":'
const USER_ID = ',"userId":'

/**
 * The 200 answer of POST /sessions/validate, in the order and shape of its
 * schema (routes/schemas.ts); extra fields after the fixed ones, by name.
 */
export function answerRenderer (fields: ExtraFields): RenderAnswer {
  const sessionKeys = fields.session.map(f => `,${JSON.stringify(f.name)}:`)
  const userKeys = fields.user.map(f => `,${JSON.stringify(f.name)}:`)
  return record => {
    let json = `${HEAD}${text(record.id)}${USER_ID}${text(record.userId)},"expiresAt":${iso(record.expiresAt)},"createdAt":${iso(record.createdAt)}` +
      `,"lastActivityAt":${record.lastActivityAt === null ? 'null' : iso(record.lastActivityAt)}` +
      `,"ipAddress":${nullable(record.ipAddress)},"userAgent":${nullable(record.userAgent)}`
    for (let i = 0; i < sessionKeys.length; i++) json += sessionKeys[i]! + extra(record.extra[i])
    json += `},"user":{"id":${text(record.userId)},"email":${text(record.email)},"firstName":${nullable(record.firstName)}` +
      `,"lastName":${nullable(record.lastName)},"username":${nullable(record.username)}`
    for (let i = 0; i < userKeys.length; i++) json += userKeys[i]! + extra(record.extra[sessionKeys.length + i])
    return json + '}}'
  }
}

// Ids are uuids (no character JSON escapes), so each is the text between its quotes.
function quoted (answer: string, from: number): string {
  return answer.slice(from + 1, answer.indexOf('"', from + 1))
}

/** The session id of an answer rendered above. */
export function sessionIdOf (answer: string): string {
  return quoted(answer, HEAD.length)
}

/** The user id of an answer rendered above. */
export function userIdOf (answer: string): string {
  return quoted(answer, answer.indexOf(USER_ID, HEAD.length) + USER_ID.length)
}
