import { createServer, connect, type Socket } from 'node:net'

interface Teardown { teardown(fn: () => unknown): void }

// A TCP proxy on loopback between the service and a dependency, to make that
// dependency unreachable (cut), partitioned (hold), or to reset connections,
// and reachable again (restore) on demand. The soak imports it too (plain
// Node), so it imports nothing of the repository's.
export interface FaultProxy {
  port: number
  /** Closes every connection and refuses new ones. */
  cut(): void
  /**
   * A partition: nothing passes either way and nothing is closed; new
   * connections are accepted but reach the dependency only after restore(),
   * as packets would once the network heals.
   */
  hold(): void
  restore(): void
  /** Resets (RST, both sides) up to `count` established connections chosen at random; how many it reset. */
  reset(count: number): number
  /**
   * From now on, each new connection is reset, with probability `p`, right
   * after the client's n-th chunk of data (n drawn from 1..`maxChunk`) has
   * gone through: during its startup or its first queries. 0 turns it off.
   */
  resetNew(p: number, maxChunk: number): void
  /** The local ports of the connections to the dependency, as it sees its clients. */
  upstreamPorts(): Set<number>
}

interface Pair { client: Socket, upstream: Socket | undefined, connectUpstream: () => void }

export async function faultProxy (t: Teardown, targetPort: number, targetHost = '127.0.0.1'): Promise<FaultProxy> {
  let open = true
  let held = false
  let resetChance = 0
  let resetMaxChunk = 1
  const pairs = new Set<Pair>()

  const drop = (pair: Pair, reset = false) => {
    if (!pairs.delete(pair)) return
    for (const s of [pair.client, pair.upstream]) {
      if (s === undefined) continue
      if (reset && !s.destroyed) s.resetAndDestroy()
      else s.destroy()
    }
  }

  // Each side's data to the other, with backpressure, stopped while held.
  const forward = (pair: Pair, from: Socket, to: () => Socket, onChunk?: () => void) => {
    from.on('data', chunk => {
      const target = to()
      if (!target.write(chunk)) {
        from.pause()
        target.once('drain', () => { if (!held) from.resume() })
      }
      onChunk?.()
    })
  }

  const server = createServer(client => {
    if (!open) { client.destroy(); return }
    const pair: Pair = {
      client,
      upstream: undefined,
      connectUpstream () {
        if (pair.upstream !== undefined || client.destroyed) return
        const upstream = pair.upstream = connect(targetPort, targetHost)
        upstream.on('error', () => drop(pair)).on('close', () => drop(pair))
        forward(pair, upstream, () => client)
        if (held) upstream.pause()
      }
    }
    pairs.add(pair)
    client.on('error', () => drop(pair)).on('close', () => drop(pair))
    let resetAfter = 0
    if (resetChance > 0 && Math.random() < resetChance) resetAfter = 1 + Math.floor(Math.random() * resetMaxChunk)
    let chunks = 0
    // a connection's data before it reached the dependency is written once it does
    forward(pair, client, () => { pair.connectUpstream(); return pair.upstream! }, () => {
      if (resetAfter > 0 && ++chunks === resetAfter) setTimeout(() => drop(pair, true), Math.random() * 5)
    })
    if (held) client.pause()
    else pair.connectUpstream()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  t.teardown(() => new Promise<void>(resolve => {
    for (const pair of [...pairs]) drop(pair)
    server.close(() => resolve())
  }))
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    cut () {
      open = false
      for (const pair of [...pairs]) drop(pair)
    },
    hold () {
      held = true
      for (const pair of pairs) {
        pair.client.pause()
        pair.upstream?.pause()
      }
    },
    restore () {
      open = true
      if (!held) return
      held = false
      for (const pair of pairs) {
        pair.connectUpstream()
        pair.client.resume()
        pair.upstream?.resume()
      }
    },
    reset (count) {
      const live = [...pairs].filter(p => p.upstream !== undefined)
      let done = 0
      while (done < count && live.length > 0) {
        const [pair] = live.splice(Math.floor(Math.random() * live.length), 1)
        drop(pair!, true)
        done++
      }
      return done
    },
    resetNew (p, maxChunk) {
      resetChance = p
      resetMaxChunk = Math.max(1, maxChunk)
    },
    upstreamPorts () {
      const ports = new Set<number>()
      for (const pair of pairs) if (pair.upstream?.localPort !== undefined) ports.add(pair.upstream.localPort)
      return ports
    }
  }
}
