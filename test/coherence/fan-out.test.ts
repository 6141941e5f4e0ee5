import t from 'tap'
import { createMetrics } from '../../src/metrics.js'
import { createFanOut, type FanOut } from '../../src/sessions/coherence/fan-out.js'
import { ownChannel, parseMessage } from '../../src/sessions/coherence/messages.js'

// The revoke's fan-out between instances, its messages carried as Postgres
// would carry them (parsed, delivered to the named channel's owner): a
// barrier settles once every registered instance acknowledged it, and waits
// out the lease for one that does not. (Over real Postgres, with frozen and
// killed instances: revoke-race.test.ts, frozen-instance.test.ts.)
const LEASE_MS = 1000
const instances = new Map<string, FanOut>()
const deaf = new Set<string>()
function instance (id: string): FanOut {
  const fanOut = createFanOut(id, ownChannel(id), LEASE_MS, async (channel, payload) => {
    const m = parseMessage(payload)
    const owner = [...instances.entries()].find(([other]) => ownChannel(other) === channel)?.[1]
    if (m.kind === 'ack') owner?.acked(m.key, m.from)
  }, createMetrics())
  instances.set(id, fanOut)
  return fanOut
}
const a = instance('a')
instance('b')
instance('c')
// what the shared channel delivers to every instance but a deaf one
function deliver (message: string): void {
  const m = parseMessage(message)
  if (m.kind !== 'barrier') throw new Error(`not a barrier: ${message}`)
  for (const [id, fanOut] of instances) if (!deaf.has(id)) fanOut.barrier(m.channel, m.key)
}

t.test('settles as soon as every registered instance acknowledged', async t => {
  const barrier = a.open()
  const committedAt = performance.now()
  deliver(barrier.message)
  await barrier.settle(committedAt, ['a', 'b', 'c'])
  t.ok(performance.now() - committedAt < LEASE_MS / 2, 'well before the lease')
})

t.test('an instance that does not acknowledge is waited out for the lease, no longer', async t => {
  deaf.add('c')
  t.teardown(() => deaf.delete('c'))
  const barrier = a.open()
  const committedAt = performance.now()
  deliver(barrier.message)
  await barrier.settle(committedAt, ['a', 'b', 'c'])
  const waited = performance.now() - committedAt
  t.ok(waited >= LEASE_MS, `waited ${Math.round(waited)} ms, the lease at least`)
  t.ok(waited < LEASE_MS + 1500, 'and not much longer')
})

t.test('unknown members: the lease is waited out', async t => {
  const barrier = a.open()
  const committedAt = performance.now()
  deliver(barrier.message)
  await barrier.settle(committedAt, undefined)
  t.ok(performance.now() - committedAt >= LEASE_MS)
})

t.test('an instance never acknowledges its own barrier, nor needs to', async t => {
  const barrier = a.open()
  const committedAt = performance.now()
  deliver(barrier.message)
  await barrier.settle(committedAt, ['a'])
  t.ok(performance.now() - committedAt < LEASE_MS / 2)
})
