// A TCP proxy that reads the Postgres wire protocol, to reset a connection at
// an exact moment of its life (its startup's pg_type query, SCRAM's exchange).
import { createServer, connect, type Socket } from 'node:net'

interface Teardown { teardown(fn: () => unknown): void }

/** A moment of a connection's life at which the proxy may reset it. */
export type ResetPoint =
  /** the client sent the driver's own array-types query (pg_catalog.pg_type) */
  | 'types-query'
  /** the server's SCRAM challenge (AuthenticationSASLContinue) just reached the client */
  | 'scram-continue'

export interface PgWireProxy {
  port: number
  /** Resets the next `count` connections that reach `point` (RST both ways). */
  resetAt(point: ResetPoint, count?: number): void
  /** Resets every connection open now: the driver must open new ones. */
  resetOpen(): void
  /** Connections reset so far, by point. */
  readonly resets: Record<ResetPoint, number>
}

const SSL_REQUEST = 80877103

// Splits a byte stream into protocol messages: a type byte and an int32 length
// (which counts itself); the client's first message has no type byte.
// An SSLRequest is answered with one unframed byte, then another startup follows.
function framer (untyped: boolean, onMessage: (type: number, body: Buffer) => void, onSslRequest?: () => void) {
  let buffered = Buffer.alloc(0)
  let first = untyped
  let skip = 0
  const framing = {
    skipByte () { skip++ },
    feed (chunk: Buffer) {
      buffered = Buffer.concat([buffered, chunk])
      for (;;) {
        if (skip > 0 && buffered.length > 0) {
          buffered = buffered.subarray(1)
          skip--
          continue
        }
        if (first) {
          if (buffered.length < 8) return
          const length = buffered.readInt32BE(0)
          if (buffered.length < length) return
          const code = buffered.readInt32BE(4)
          buffered = buffered.subarray(length)
          first = code === SSL_REQUEST
          if (first) onSslRequest?.()
          continue
        }
        if (buffered.length < 5) return
        const length = buffered.readInt32BE(1)
        if (buffered.length < length + 1) return
        onMessage(buffered[0]!, buffered.subarray(5, length + 1))
        buffered = buffered.subarray(length + 1)
      }
    }
  }
  return framing
}

export async function pgWireProxy (t: Teardown, targetPort: number, targetHost = '127.0.0.1'): Promise<PgWireProxy> {
  const armed: Record<ResetPoint, number> = { 'types-query': 0, 'scram-continue': 0 }
  const resets: Record<ResetPoint, number> = { 'types-query': 0, 'scram-continue': 0 }
  const sockets = new Set<Socket>()
  const open = new Set<() => void>()

  const server = createServer(client => {
    const upstream = connect(targetPort, targetHost)
    sockets.add(client).add(upstream)
    let done = false
    const kill = () => {
      done = true
      client.resetAndDestroy()
      upstream.resetAndDestroy()
    }
    const reset = (point: ResetPoint) => {
      if (done) return
      armed[point]--
      resets[point]++
      kill()
    }
    open.add(kill)
    const drop = () => {
      open.delete(kill)
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)

    let scramContinue = false
    const fromServer = framer(false, (type, body) => {
      // 'R' with code 11: AuthenticationSASLContinue
      if (type === 0x52 && body.readInt32BE(0) === 11 && armed['scram-continue'] > 0) scramContinue = true
    })
    const fromClient = framer(true, (type, body) => {
      // Parse ('P') or simple Query ('Q') of the driver's startup query
      if ((type === 0x50 || type === 0x51) && armed['types-query'] > 0 && body.includes('pg_catalog.pg_type')) reset('types-query')
    }, () => fromServer.skipByte())
    client.on('data', (chunk: Buffer) => {
      fromClient.feed(chunk)
      if (!done) upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      fromServer.feed(chunk)
      if (done) return
      if (scramContinue) {
        // the challenge and the reset reach the client together: it reads
        // both in one turn, and the connection is gone while the driver is
        // still answering the challenge
        client.write(chunk)
        reset('scram-continue')
        return
      }
      client.write(chunk)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  t.teardown(() => new Promise<void>(resolve => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    resetAt (point, count = 1) { armed[point] += count },
    resetOpen () { for (const kill of [...open]) kill() },
    resets
  }
}
