// A shared-cache entry as one Redis string in a compact binary layout: what
// keeps Redis under 500 bytes a session (bench/redis-memory.ts measures it).
//
// Layout 2, in order:
//   u8          layout (2). Layout 1 (no fresh-until: fresh while it lives,
//               as its Redis TTL was the cache TTL) is still read; any other
//               is read as absent (a miss, refilled).
//   u8 + ASCII  the epoch the entry was filled under
//   16 bytes    session id, 16 bytes user id (uuids, as Postgres stores them)
//   3 × int48   expires_at, created_at, last_activity_at (ms; the last 0 when null)
//   int48       fresh until (ms): past it, the entry is stale (answered only
//               while Postgres cannot be reached); Redis drops it later
//   u8          flags: which nullable fields are present, and how the user agent is stored
//   then each present text as a varint length and its bytes: ip address,
//   user agent (packed: user-agents.ts, or UTF-8), email (always), first name,
//   last name, username, and the operator's extra fields as one JSON array.
import { NO_EXTRA, type SessionRecord } from './session-record.js'
import { packUserAgent, unpackUserAgent } from './user-agents.js'

export const LAYOUT = 2
const LAYOUT_1 = 1

const HAS_ACTIVITY = 1
const HAS_IP = 2
const HAS_UA = 4
const UA_PACKED = 8
const HAS_FIRST = 16
const HAS_LAST = 32
const HAS_USERNAME = 64
const HAS_EXTRA = 128

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export interface CachedEntry {
  epoch: string
  record: SessionRecord
  /** ms: past it the entry is stale (SESSION_CACHE_STALE_SECONDS) */
  freshUntil: number
}

function uuidBytes (id: string): Buffer {
  if (!UUID.test(id)) throw new Error('not a uuid')
  return Buffer.from(id.replaceAll('-', ''), 'hex')
}

function uuidText (bytes: Buffer, at: number): string {
  const hex = bytes.toString('hex', at, at + 16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

class Writer {
  parts: Buffer[] = []
  size = 0
  push (b: Buffer): void {
    this.parts.push(b)
    this.size += b.length
  }

  text (bytes: Buffer): void {
    const n = bytes.length
    // a varint: 7 bits a byte, low first
    const head = n < 0x80 ? Buffer.of(n) : n < 0x4000 ? Buffer.of((n & 0x7f) | 0x80, n >> 7) : Buffer.of((n & 0x7f) | 0x80, ((n >> 7) & 0x7f) | 0x80, n >> 14)
    this.push(head)
    this.push(bytes)
  }
}

export function encodeEntry (record: SessionRecord, epoch: string, freshUntil: number): Buffer {
  const w = new Writer()
  const epochBytes = Buffer.from(epoch, 'latin1')
  const fixed = Buffer.allocUnsafe(2 + epochBytes.length + 32 + 24 + 1)
  let at = 0
  fixed[at++] = LAYOUT
  fixed[at++] = epochBytes.length
  at += epochBytes.copy(fixed, at)
  at += uuidBytes(record.id).copy(fixed, at)
  at += uuidBytes(record.userId).copy(fixed, at)
  at = fixed.writeIntBE(record.expiresAt, at, 6)
  at = fixed.writeIntBE(record.createdAt, at, 6)
  at = fixed.writeIntBE(record.lastActivityAt ?? 0, at, 6)
  at = fixed.writeIntBE(freshUntil, at, 6)
  const ua = record.userAgent === null ? undefined : packUserAgent(record.userAgent)
  fixed[at] = (record.lastActivityAt !== null ? HAS_ACTIVITY : 0) | (record.ipAddress !== null ? HAS_IP : 0) |
    (record.userAgent !== null ? HAS_UA : 0) | (ua !== undefined ? UA_PACKED : 0) | (record.firstName !== null ? HAS_FIRST : 0) |
    (record.lastName !== null ? HAS_LAST : 0) | (record.username !== null ? HAS_USERNAME : 0) | (record.extra.length > 0 ? HAS_EXTRA : 0)
  w.push(fixed)
  if (record.ipAddress !== null) w.text(Buffer.from(record.ipAddress))
  if (record.userAgent !== null) w.text(ua !== undefined ? Buffer.from(ua, 'latin1') : Buffer.from(record.userAgent))
  w.text(Buffer.from(record.email))
  if (record.firstName !== null) w.text(Buffer.from(record.firstName))
  if (record.lastName !== null) w.text(Buffer.from(record.lastName))
  if (record.username !== null) w.text(Buffer.from(record.username))
  if (record.extra.length > 0) w.text(Buffer.from(JSON.stringify(record.extra)))
  return Buffer.concat(w.parts, w.size)
}

class Reader {
  at = 0
  constructor (readonly bytes: Buffer) {}

  span (): [number, number] {
    let n = 0
    for (let shift = 0; ; shift += 7) {
      const b = this.bytes[this.at++]
      if (b === undefined || shift > 14) throw new RangeError('truncated entry')
      n |= (b & 0x7f) << shift
      if (b < 0x80) break
    }
    const start = this.at
    this.at += n
    if (this.at > this.bytes.length) throw new RangeError('truncated entry')
    return [start, this.at]
  }

  text (): string {
    const [start, end] = this.span()
    return this.bytes.toString('utf8', start, end)
  }
}

/**
 * The entry, or undefined when it is not one of this layout or not for
 * `extraCount` extra fields (an older layout, another configuration, a
 * damaged value): never trusted, always refilled.
 */
export function decodeEntry (bytes: Buffer, extraCount: number): CachedEntry | undefined {
  try {
    const layout = bytes[0]
    if (layout !== LAYOUT && layout !== LAYOUT_1) return undefined
    const epochLength = bytes[1]!
    const r = new Reader(bytes)
    r.at = 2 + epochLength
    const epoch = bytes.toString('latin1', 2, r.at)
    const id = uuidText(bytes, r.at)
    const userId = uuidText(bytes, r.at + 16)
    r.at += 32
    const expiresAt = bytes.readIntBE(r.at, 6)
    const createdAt = bytes.readIntBE(r.at + 6, 6)
    const activity = bytes.readIntBE(r.at + 12, 6)
    let freshUntil = Infinity
    if (layout === LAYOUT) {
      freshUntil = bytes.readIntBE(r.at + 18, 6)
      r.at += 6
    }
    const flags = bytes[r.at + 18]!
    r.at += 19
    const ipAddress = flags & HAS_IP ? r.text() : null
    let userAgent: string | null = null
    if (flags & HAS_UA) {
      if (flags & UA_PACKED) {
        const [start, end] = r.span()
        userAgent = unpackUserAgent(bytes, start, end)
      } else {
        userAgent = r.text()
      }
    }
    const email = r.text()
    const firstName = flags & HAS_FIRST ? r.text() : null
    const lastName = flags & HAS_LAST ? r.text() : null
    const username = flags & HAS_USERNAME ? r.text() : null
    let extra: readonly unknown[] = NO_EXTRA
    if (flags & HAS_EXTRA) {
      const values = JSON.parse(r.text()) as unknown
      if (!Array.isArray(values)) return undefined
      extra = values
    }
    if (extra.length !== extraCount || r.at !== bytes.length) return undefined
    return {
      epoch,
      freshUntil,
      record: { id, userId, expiresAt, createdAt, lastActivityAt: flags & HAS_ACTIVITY ? activity : null, ipAddress, userAgent, email, firstName, lastName, username, extra }
    }
  } catch {
    return undefined
  }
}
