// The in-process cache (L1): bounded by entries and by bytes, least recently
// used first out, with a per-user chain (a user change finds that user's
// sessions) and a sequence number that makes a fill begun before an
// invalidation give up instead of writing back. Whether it may be *served*
// is the lease's decision (coherence/lease.ts).
//
// Compact on purpose: the only object an entry has on the heap is its answer
// (one flat string, sent as it is). Its key (the digest's 32 bytes), its
// place in the hash table, the LRU and user chains and the numbers a hit
// checks live in typed arrays indexed by its slot. A major GC traces one
// object per entry, and a hit allocates nothing.
import type { Metrics } from '../metrics.js'
import { userIdOf } from './answer.js'

/** A token's SHA-256 as a 32-character latin1 string: the memory's key (hex elsewhere). */
export type MemoryKey = string

export const memoryKey = (digestHex: string): MemoryKey => Buffer.from(digestHex, 'hex').toString('latin1')
export const digestHex = (key: MemoryKey): string => Buffer.from(key, 'latin1').toString('hex')

export interface LocalEntry {
  answer: string
  userId: string
  /** Served until then (ms, exclusive): the earliest of expiry, the memory TTL and the idle limit. */
  until: number
  /** The activity writer's generation when the session was last queued for a write (0: never). */
  stamp: number
}

export interface LocalCache {
  /** Hot path: the slot of a live entry for `key`, made the most recent; -1 when there is none. */
  find(key: MemoryKey, now: number): number
  answer(slot: number): string
  /** True when the session of `slot` was queued for an activity write in neither `generation` nor the one before; then stamps it. */
  due(slot: number, generation: number): boolean
  /** Bumped by every invalidation: read it before a lookup, pass it to set(). */
  readonly seq: number
  /** Stores the entry unless anything was invalidated since `seq` was read; `copied`: read from Redis, not Postgres. */
  set(key: MemoryKey, entry: LocalEntry, seq: number, copied?: boolean): void
  delete(keys: readonly MemoryKey[]): void
  deleteUser(userId: string): void
  /** Forgets everything (a lease lapse). */
  clear(): void
  /**
   * Forgets what was copied from Redis (an epoch move: the shared cache is
   * void, but what Postgres answered stays true, kept so by notifications).
   * Lazily: a voided copy is dropped when next found, or as the oldest.
   */
  voidCopies(): void
  readonly size: number
  readonly bytes: number
}

export interface LocalCacheLimits {
  maxEntries: number
  maxBytes: number
  ttlMs: number
}

// What an entry costs beyond its answer's string, measured with 100,000
// entries (bench/l1-memory.ts): 32 bytes of key, 8 of hash table
// (at most half full), 24 in the slot arrays, 4 for its answer's pointer,
// and its share of the user map (under 20).
export const ENTRY_OVERHEAD_BYTES = 88
const STRING_HEADER = 12

// eslint-disable-next-line no-control-regex
const WIDE = /[^\x00-\xff]/

/** Heap bytes an entry with this answer is counted for: its string (one byte a character when all fit in latin1, else two) and the rest. */
export function entryBytes (answer: string): number {
  return ((STRING_HEADER + answer.length * (WIDE.test(answer) ? 2 : 1) + 7) & ~7) + ENTRY_OVERHEAD_BYTES
}

// FNV-1a over the user id's characters: where its chain starts in the user map.
function userHash (userId: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < userId.length; i++) h = Math.imul(h ^ userId.charCodeAt(i), 0x01000193)
  return h | 0
}

const NONE = -1
const KEY_BYTES = 32
const FIRST_CAPACITY = 1024
// The hash table is allocated for this many entries at once (4 MiB); past it,
// it doubles as the entries do.
const UPFRONT_ENTRIES = 1 << 20

const pow2AtLeast = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(2, n)))

export function createLocalCache (limits: LocalCacheLimits, metrics: Metrics): LocalCache {
  const evicted = { evict: metrics.localCacheEvictions.labels('evict'), expire: metrics.localCacheEvictions.labels('expire') }
  // a user's sessions: the user hash's first slot, then a chain through userNext
  const users = new Map<number, number>()
  let capacity = 0
  const answers: Array<string | undefined> = []
  let digests = new Uint8Array(0)
  let until = new Float64Array(0)
  let stamps = new Uint32Array(0)
  // the copy generation an entry read from Redis was stored under; 0: from Postgres
  let copies = new Uint32Array(0)
  let copyGeneration = 1
  // least recent at `oldest`, most recent at `newest`; free slots chain through `after`
  let before = new Int32Array(0)
  let after = new Int32Array(0)
  let userNext = new Int32Array(0)
  // open addressing, linear probing: slot + 1 at the key's position, 0 empty; at most half full
  let table = new Int32Array(pow2AtLeast(2 * Math.min(limits.maxEntries, UPFRONT_ENTRIES)))
  let mask = table.length - 1
  let oldest = NONE
  let newest = NONE
  let free = NONE
  let used = 0
  let bytes = 0
  let seq = 0

  // the key's first four bytes: a digest's are uniform
  const homeOfKey = (key: MemoryKey) => (key.charCodeAt(0) | key.charCodeAt(1) << 8 | key.charCodeAt(2) << 16 | key.charCodeAt(3) << 24) & mask
  const homeOfSlot = (slot: number) => {
    const at = slot * KEY_BYTES
    return (digests[at]! | digests[at + 1]! << 8 | digests[at + 2]! << 16 | digests[at + 3]! << 24) & mask
  }
  function holds (slot: number, key: MemoryKey): boolean {
    const at = slot * KEY_BYTES
    for (let i = 0; i < KEY_BYTES; i++) if (digests[at + i] !== key.charCodeAt(i)) return false
    return true
  }

  function lookup (key: MemoryKey): number {
    for (let i = homeOfKey(key); ; i = (i + 1) & mask) {
      const s = table[i]!
      if (s === 0) return NONE
      if (holds(s - 1, key)) return s - 1
    }
  }

  function place (slot: number): void {
    let i = homeOfSlot(slot)
    while (table[i] !== 0) i = (i + 1) & mask
    table[i] = slot + 1
  }

  // Backward-shift deletion: the entries after it move up, so that no probe
  // stops early at the hole it leaves.
  function unplace (slot: number): void {
    let i = homeOfSlot(slot)
    while (table[i] !== slot + 1) i = (i + 1) & mask
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const k = homeOfSlot(table[j]! - 1)
      // move j up to i unless its home lies cyclically in (i, j]
      if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
        table[i] = table[j]!
        i = j
      }
    }
    table[i] = 0
  }

  function grow (): void {
    const next = Math.min(limits.maxEntries, Math.max(FIRST_CAPACITY, capacity * 2))
    const widen = <T extends Float64Array | Uint32Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T, width = 1): T => {
      const a = make(next * width)
      a.set(old)
      return a
    }
    digests = widen(digests, n => new Uint8Array(n), KEY_BYTES)
    until = widen(until, n => new Float64Array(n))
    stamps = widen(stamps, n => new Uint32Array(n))
    copies = widen(copies, n => new Uint32Array(n))
    before = widen(before, n => new Int32Array(n))
    after = widen(after, n => new Int32Array(n))
    userNext = widen(userNext, n => new Int32Array(n))
    // pushed rather than sized: a large sized array would start in dictionary mode
    for (let slot = capacity; slot < next; slot++) answers.push(undefined)
    for (let slot = next - 1; slot >= capacity; slot--) {
      after[slot] = free
      free = slot
    }
    capacity = next
    if (table.length < 2 * capacity) {
      table = new Int32Array(pow2AtLeast(2 * capacity))
      mask = table.length - 1
      for (let s = oldest; s !== NONE; s = after[s]!) place(s)
    }
  }

  function unlinkAge (slot: number): void {
    const b = before[slot]!
    const a = after[slot]!
    if (b === NONE) oldest = a
    else after[b] = a
    if (a === NONE) newest = b
    else before[a] = b
  }

  function linkNewest (slot: number): void {
    before[slot] = newest
    after[slot] = NONE
    if (newest === NONE) oldest = slot
    else after[newest] = slot
    newest = slot
  }

  function unlinkUser (slot: number, answer: string): void {
    const hash = userHash(userIdOf(answer))
    const head = users.get(hash)!
    if (head === slot) {
      const next = userNext[slot]!
      if (next === NONE) users.delete(hash)
      else users.set(hash, next)
      return
    }
    let prev = head
    while (userNext[prev] !== slot) prev = userNext[prev]!
    userNext[prev] = userNext[slot]!
  }

  function remove (slot: number, reason?: 'evict' | 'expire'): void {
    const answer = answers[slot]!
    unplace(slot)
    unlinkAge(slot)
    unlinkUser(slot, answer)
    bytes -= entryBytes(answer)
    answers[slot] = undefined
    after[slot] = free
    free = slot
    used--
    if (reason !== undefined) evicted[reason].inc()
  }

  function take (): number {
    if (free === NONE && capacity < limits.maxEntries) grow()
    if (free === NONE) remove(oldest, 'evict')
    const slot = free
    free = after[slot]!
    return slot
  }

  const cache: LocalCache = {
    find (key, now) {
      const slot = lookup(key)
      if (slot === NONE) return NONE
      if (now >= until[slot]!) {
        remove(slot, 'expire')
        return NONE
      }
      const copy = copies[slot]!
      if (copy !== 0 && copy !== copyGeneration) {
        remove(slot)
        return NONE
      }
      if (slot !== newest) {
        unlinkAge(slot)
        linkNewest(slot)
      }
      return slot
    },

    answer: slot => answers[slot]!,

    due (slot, generation) {
      const s = stamps[slot]!
      if (s === generation || s + 1 === generation) return false
      stamps[slot] = generation
      return true
    },

    get seq () { return seq },

    set (key, entry, seenSeq, copied = false) {
      if (seenSeq !== seq || entry.until <= Date.now()) return
      const size = entryBytes(entry.answer)
      if (size > limits.maxBytes) return
      const old = lookup(key)
      if (old !== NONE) remove(old)
      while (used > 0 && bytes + size > limits.maxBytes) remove(oldest, 'evict')
      const slot = take()
      digests.set(Buffer.from(key, 'latin1'), slot * KEY_BYTES)
      place(slot)
      answers[slot] = flat(entry.answer)
      until[slot] = Math.min(entry.until, Date.now() + limits.ttlMs)
      stamps[slot] = entry.stamp
      copies[slot] = copied ? copyGeneration : 0
      linkNewest(slot)
      const hash = userHash(entry.userId)
      userNext[slot] = users.get(hash) ?? NONE
      users.set(hash, slot)
      used++
      bytes += size
    },

    delete (list) {
      seq++
      for (const key of list) {
        const slot = lookup(key)
        if (slot !== NONE) remove(slot)
      }
    },

    deleteUser (userId) {
      seq++
      // the chain may hold other users whose ids share the hash
      for (let slot = users.get(userHash(userId)) ?? NONE; slot !== NONE;) {
        const next = userNext[slot]!
        if (userIdOf(answers[slot]!) === userId) remove(slot)
        slot = next
      }
    },

    clear () {
      seq++
      users.clear()
      // kept at their size, emptied in a few passes of memset
      table.fill(0)
      answers.fill(undefined)
      free = NONE
      for (let slot = capacity - 1; slot >= 0; slot--) {
        after[slot] = free
        free = slot
      }
      oldest = newest = NONE
      used = 0
      bytes = 0
    },

    voidCopies () {
      seq++
      copyGeneration++
    },

    get size () { return used },
    get bytes () { return bytes }
  }
  return cache
}

// Concatenation leaves a tree of string pieces: the entry keeps one flat
// string (one heap object, nothing inside it for the GC to trace).
function flat (text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8')
}
