// How each Redis maxmemory-policy suits the cache, and what the doctor
// recommends: the one place to change them. No policy can bring a revoked
// session back: a fill lands only while its fill lease is there, and an
// evicted lease only refuses the fill (src/sessions/coherence/tombstones.ts).
// What a policy changes is how warm the cache stays.
import type { Status } from './report.js'

export const RECOMMENDATION = 'set maxmemory below the host\'s memory and maxmemory-policy allkeys-lru'

export interface Verdict {
  /** When Redis is at its maxmemory; without one it never evicts, and a policy is at most a warning. */
  status: Status
  why: string
}

// Every key of the service has a TTL, so volatile-* and allkeys-* act alike here.
const BY_USE: Verdict = { status: 'pass', why: 'evicts the least recently or frequently used keys first' }
const RIGHT_BUT_COLDER = 'never a revoked session cached (fill leases), but a colder cache than allkeys-lru'

export const POLICIES: Readonly<Record<string, Verdict>> = {
  'allkeys-lru': BY_USE,
  'allkeys-lfu': BY_USE,
  'volatile-lru': BY_USE,
  'volatile-lfu': BY_USE,
  // still correct: a tombstone that cannot be written moves the cache epoch
  noeviction: { status: 'warn', why: 'a full Redis refuses writes: fills fail, and so do tombstones, so every revoke moves the cache epoch and the whole cache goes cold' },
  'volatile-ttl': { status: 'warn', why: `evicts the keys nearest to expiry first: fill leases (3 s) and tombstones (60 s) before entries, so fills are refused under pressure; ${RIGHT_BUT_COLDER}` },
  'allkeys-random': { status: 'warn', why: `evicts at random, the most used entries as readily as the least; ${RIGHT_BUT_COLDER}` },
  'volatile-random': { status: 'warn', why: `evicts at random, the most used entries as readily as the least; ${RIGHT_BUT_COLDER}` }
}

export const UNKNOWN_POLICY: Verdict = { status: 'warn', why: 'not one the service knows to evict by use' }
