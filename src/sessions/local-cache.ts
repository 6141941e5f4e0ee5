// The in-process cache (L1): bounded by entries and by bytes, with a per-user
// index (a user change finds that user's sessions) and a sequence number that
// makes a fill begun before an invalidation give up instead of writing back.
// Whether it may be *served* is the lease's decision (coherence/lease.ts).
import { LRUCache } from 'lru-cache'
import type { Metrics } from '../metrics.js'
import type { SessionRecord } from './session-record.js'

export interface LocalCache {
  get(digest: string): SessionRecord | undefined
  /** Bumped by every invalidation: read it before a lookup, pass it to set(). */
  readonly seq: number
  /** Stores the record unless anything was invalidated since `seq` was read. */
  set(digest: string, record: SessionRecord, seq: number): void
  delete(digests: readonly string[]): void
  deleteUser(userId: string): void
  /** Forgets everything (a lease lapse, an epoch move). */
  clear(): void
  readonly size: number
  readonly bytes: number
}

export interface LocalCacheLimits {
  maxEntries: number
  maxBytes: number
  ttlMs: number
}

// An estimate of what an entry holds on the heap: the record's strings (two
// bytes a character), the answer serialized from it, and the map's overhead.
function sizeOf (record: SessionRecord): number {
  let chars = record.id.length + record.userId.length + record.email.length
  for (const s of [record.ipAddress, record.userAgent, record.firstName, record.lastName, record.username]) chars += s?.length ?? 0
  return 480 + chars * 4
}

export function createLocalCache (limits: LocalCacheLimits, metrics: Metrics): LocalCache {
  const byUser = new Map<string, Set<string>>()
  const evicted = metrics.localCacheEvictions
  let seq = 0
  let clearing = false

  const lru = new LRUCache<string, SessionRecord>({
    max: limits.maxEntries,
    maxSize: limits.maxBytes,
    sizeCalculation: sizeOf,
    ttlAutopurge: false,
    dispose (record, digest, reason) {
      if (clearing) return
      const digests = byUser.get(record.userId)
      if (digests !== undefined) {
        digests.delete(digest)
        if (digests.size === 0) byUser.delete(record.userId)
      }
      if (reason === 'evict' || reason === 'expire') evicted.labels(reason).inc()
    }
  })

  const cache: LocalCache = {
    get: digest => lru.get(digest),
    get seq () { return seq },
    set (digest, record, seenSeq) {
      if (seenSeq !== seq) return
      const ttl = Math.min(limits.ttlMs, record.expiresAt - Date.now())
      if (ttl <= 0) return
      lru.set(digest, record, { ttl })
      let digests = byUser.get(record.userId)
      if (digests === undefined) byUser.set(record.userId, digests = new Set())
      digests.add(digest)
    },
    delete (digests) {
      seq++
      for (const digest of digests) lru.delete(digest)
    },
    deleteUser (userId) {
      seq++
      const digests = byUser.get(userId)
      if (digests !== undefined) for (const digest of [...digests]) lru.delete(digest)
    },
    clear () {
      seq++
      clearing = true
      lru.clear()
      byUser.clear()
      clearing = false
    },
    get size () { return lru.size },
    get bytes () { return lru.calculatedSize }
  }
  return cache
}
