// The service's Lua scripts as ioredis commands: each is defined where it is
// used (defineCommand); their call signatures are declared here, once, so
// that no call needs a cast.
import type { Result } from 'ioredis'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** session-cache.ts: the entry, or the fill lease (coherence/tombstones.ts READ) */
    svReadBuffer(entry: string, lease: string, token: string, leaseMs: number, head: Buffer): Result<[Buffer | null, Buffer?], Context>
    svLease(lease: string, token: string, leaseMs: number): Result<string, Context>
    svRelease(lease: string, token: string): Result<number, Context>
    svFill(entry: string, tombstone: string, lease: string, index: string, deadline: number, expireAt: number, ttlCapMs: number, value: Buffer, token: string, digest: Buffer): Result<number, Context>
    svFillEntry(entry: string, tombstone: string, lease: string, deadline: number, expireAt: number, ttlCapMs: number, value: Buffer, token: string): Result<number, Context>
    svIndexAdd(index: string, expireAt: number, ttlCapMs: number, digest: Buffer): Result<number, Context>
    svInvalidate(entry: string, tombstone: string, lease: string, ttlMs: number): Result<number, Context>
    /** coherence/change-log.ts: raises the watermark */
    svClaim(key: string, xmin: string, ttlMs: number): Result<number, Context>
    /** limits/shared-counter.ts: adds this instance's hits, returns the shared count */
    svCount(key: string, add: number, ttlMs: number): Result<number, Context>
    /** doctor/redis-latency.ts: a write shaped like a cache entry */
    svDoctorWrite(key: string, ttlMs: string, value: Buffer): Result<number, Context>
  }
}
