// Every message the coherence protocol sends over Postgres NOTIFY, in one
// list: its code (the payload's first two characters), who sends it, on
// which channel, and how it is read back.
//
//   s:<sha256hex>        a session changed or was deleted   triggers (migrations 002, 003)  shared channel
//   u:<userId>           a user changed or was deleted      triggers                         shared channel
//   e:<epoch>            the cache epoch moved              trigger on cache_epoch           shared channel
//   b:<channel>:<key>    a revoke's barrier: acknowledge    the revoking instance, in its    shared channel
//                        it to <channel>                    transaction (delivered at commit)
//   a:<key>:<id>         instance <id> heard barrier <key>  every other instance             the revoker's own channel
//   p:<n>                this instance's probe n            the instance itself (lease)      its own channel

/** The channel every instance listens on (the triggers' channel). */
export const CHANNEL = 'session_validator'

/** An instance's own channel: probes and acknowledgements come back on it. */
export const ownChannel = (instanceId: string) => `sv_${instanceId}`

export type Message =
  | { kind: 'session', digest: string }
  | { kind: 'user', userId: string }
  | { kind: 'epoch', epoch: string }
  | { kind: 'barrier', channel: string, key: string }
  | { kind: 'ack', key: string, from: string }
  | { kind: 'probe', n: number }
  | { kind: 'other' }

export const barrierMessage = (channel: string, key: string) => `b:${channel}:${key}`
export const ackMessage = (key: string, instanceId: string) => `a:${key}:${instanceId}`
export const probeMessage = (n: number) => `p:${n}`

const DIGEST = /^[0-9a-f]{64}$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const OTHER: Message = { kind: 'other' }

/** Reads a payload; anything malformed is `other` (counted, never acted on). */
export function parseMessage (payload: string): Message {
  const code = payload.slice(0, 2)
  const value = payload.slice(2)
  switch (code) {
    case 's:': return DIGEST.test(value) ? { kind: 'session', digest: value } : OTHER
    case 'u:': return UUID.test(value) ? { kind: 'user', userId: value.toLowerCase() } : OTHER
    case 'e:': return /^\d+$/.test(value) ? { kind: 'epoch', epoch: value } : OTHER
    case 'b:': {
      const i = value.lastIndexOf(':')
      return i > 0 ? { kind: 'barrier', channel: value.slice(0, i), key: value.slice(i + 1) } : OTHER
    }
    case 'a:': {
      const [key, from] = value.split(':')
      return key !== undefined && from !== undefined ? { kind: 'ack', key, from } : OTHER
    }
    case 'p:': return /^\d+$/.test(value) ? { kind: 'probe', n: Number(value) } : OTHER
    default: return OTHER
  }
}
