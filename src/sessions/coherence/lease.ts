// The lease: this instance may answer from its own memory only while it can
// prove it has heard every invalidation that a revoke may be waiting on.
import type { FastifyBaseLogger } from 'fastify'
import type { Sql } from '../../db/postgres.js'
import { failureLog } from '../../errors.js'
import type { Metrics } from '../../metrics.js'
import { probeMessage } from './messages.js'

export interface Lease {
  /** Hot path: may this instance answer from its own memory right now? */
  valid(): boolean
  /** Probe `n`, sent on the prober connection, came back through the listener. */
  delivered(n: number): void
  /** The listener lost its connection: what it would have heard is lost. */
  lost(): void
  close(): Promise<void>
}

export interface LeaseOptions {
  prober: Sql
  id: string
  channel: string
  leaseMs: number
  /** Whether to hold a lease at all (the in-process cache is on). */
  register: boolean
  metrics: Metrics
  log: FastifyBaseLogger
  /** The lease lapsed and is being renewed: memory may miss an invalidation. */
  onLapse(): void
  /** The epoch Postgres held when the registration was renewed. */
  onEpoch(epoch: string): void
  /** Every change of a transaction below `xmin` has been delivered. */
  onDelivered(xmin: string): void
}

// Registered instances are waited for by every revoke, until their row's
// lease_until (Postgres' clock). An instance believes itself registered for
// less than that, counted from when it *sent* the refresh.
const REGISTRATION_TTL_MS = 3000
const REGISTRATION_MARGIN_MS = 500
const REGISTER_EVERY_MS = 1000
// Probes in flight beyond this are not sent: a stuck prober must not pile up.
const MAX_IN_FLIGHT = 4

interface Probe { sentAt: number, xmin?: string, delivered: boolean }

// Proof of delivery: the probe is a NOTIFY on this instance's own channel,
// sent on another connection than the listener. Postgres delivers
// notifications in commit order, so when the listener hears probe n, it has
// heard everything committed before probe n was. The lease runs from when
// probe n was *sent* (a probe sent before a freeze proves nothing about it),
// and it is checked when answering, never when the entry was stored.
export function createLease (o: LeaseOptions): Lease {
  const probeEveryMs = o.register ? Math.max(20, Math.floor(o.leaseMs / 5)) : 1000
  const probes = new Map<number, Probe>()
  let next = 0
  let probeUntil = -Infinity
  let registeredUntil = o.register ? -Infinity : Infinity
  // min(probeUntil, registeredUntil), kept so that valid() is one comparison
  let until = -Infinity
  let held = false
  const failures = failureLog(code => o.log.warn({ code }, `coherence: ${what.last} failed; answers from memory stop until it works`))
  const what = { last: '' }
  const losses = o.metrics.leaseLosses
  const state = o.metrics.leaseHeld

  function renew (apply: () => void): void {
    const now = performance.now()
    if (now >= until) {
      // Between the end of the last lease and now, an invalidation may have
      // gone unheard: memory starts over before the lease is held again.
      if (held) losses.inc()
      o.onLapse()
    }
    apply()
    until = Math.min(probeUntil, registeredUntil)
    held = now < until
    state.set(held ? 1 : 0)
  }

  function warn (err: unknown, step: string): void {
    what.last = step
    failures.failed(err)
  }

  function probe (): void {
    if (probes.size >= MAX_IN_FLIGHT) {
      // the oldest is given up on; its delivery, if it ever comes, is stale anyway
      const oldest = probes.keys().next().value
      if (oldest !== undefined && performance.now() - probes.get(oldest)!.sentAt > o.leaseMs) probes.delete(oldest)
      else return
    }
    const n = ++next
    const p: Probe = { sentAt: performance.now(), delivered: false }
    probes.set(n, p)
    o.prober`SELECT pg_notify(${o.channel}, ${probeMessage(n)}), pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`
      .then(rows => {
        p.xmin = (rows[0] as { xmin: string }).xmin
        failures.ok()
        if (p.delivered) finish(n, p)
      }, err => { probes.delete(n); warn(err, 'probe') })
  }

  function finish (n: number, p: Probe): void {
    probes.delete(n)
    o.onDelivered(p.xmin!)
  }

  async function register (): Promise<void> {
    const sentAt = performance.now()
    try {
      const rows = await o.prober`
        INSERT INTO session_validator.instances (id, channel, lease_until)
        VALUES (${o.id}, ${o.channel}, clock_timestamp() + ${REGISTRATION_TTL_MS} * interval '1 millisecond')
        ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until
        RETURNING (SELECT epoch::text FROM session_validator.cache_epoch) AS epoch`
      o.onEpoch((rows[0] as { epoch: string }).epoch)
      renew(() => { registeredUntil = Math.max(registeredUntil, sentAt + REGISTRATION_TTL_MS - REGISTRATION_MARGIN_MS) })
    } catch (err) {
      warn(err, 'registration')
    }
  }

  const probeTimer = setInterval(probe, probeEveryMs)
  probeTimer.unref()
  let registerTimer: NodeJS.Timeout | undefined
  if (o.register) {
    registerTimer = setInterval(() => { register().catch(() => {}) }, REGISTER_EVERY_MS)
    registerTimer.unref()
    register().catch(() => {})
  }
  probe()

  return {
    valid: () => performance.now() < until,
    delivered (n) {
      const p = probes.get(n)
      if (p === undefined) return
      p.delivered = true
      // probes can come back out of order only across a reconnect; an older
      // one never shortens the lease
      renew(() => { probeUntil = Math.max(probeUntil, p.sentAt + o.leaseMs) })
      if (p.xmin !== undefined) finish(n, p)
    },
    lost () {
      probeUntil = -Infinity
      until = -Infinity
      probes.clear()
      if (held) losses.inc()
      held = false
      state.set(0)
      o.onLapse()
    },
    async close () {
      clearInterval(probeTimer)
      if (registerTimer !== undefined) clearInterval(registerTimer)
      until = -Infinity
      // bounded: with Postgres away the registration just expires (fan-out
      // waits on no instance past the lease), and shutdown must not hang
      if (o.register) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          o.prober`DELETE FROM session_validator.instances WHERE id = ${o.id}`.catch(() => {}),
          new Promise(resolve => { timer = setTimeout(resolve, 1000) })
        ])
        clearTimeout(timer)
      }
    }
  }
}
