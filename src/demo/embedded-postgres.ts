// The demo's in-memory Postgres (PGlite), reached over a real socket.
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { freePort } from '../free-port.js'

export interface EmbeddedPostgres {
  url: string
  /** NOTIFYs of every connection on these channels, delivered in-process (see below). */
  onNotification(channels: readonly string[], listener: (channel: string, payload: string) => void): Promise<void>
  close(): Promise<void>
}

type Listener = (channel: string, payload: string) => void

// PGlite is a single backend behind its socket server: a NOTIFY comes back on
// the connection that sent it, never to a LISTENing one. Every connection's
// output is scanned for NotificationResponse messages ('A': pid, channel,
// payload), which are handed to in-process listeners as they commit.
function tapNotifications (db: PGlite, listeners: Listener[]): void {
  const exec = db.execProtocolRawStream.bind(db)
  db.execProtocolRawStream = async (message, options) => {
    let pending = Buffer.alloc(0)
    return await exec(message, {
      ...options,
      onRawData (chunk) {
        pending = pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([pending, chunk])
        while (pending.length >= 5) {
          const end = 1 + pending.readInt32BE(1)
          if (pending.length < end) break
          if (pending[0] === 0x41) {
            const body = pending.subarray(9, end - 1)
            const split = body.indexOf(0)
            const channel = body.toString('utf8', 0, split)
            const payload = body.toString('utf8', split + 1)
            for (const listener of listeners) listener(channel, payload)
          }
          pending = pending.subarray(end)
        }
        options?.onRawData?.(chunk)
      }
    })
  }
}

// PGlite (Postgres compiled to WebAssembly, in memory) behind its socket
// server, so the very same driver and SQL run as in production. Its server
// takes one connection unless told otherwise; the pool and the prober need
// more, or the driver hangs waiting for a connection.
export async function startEmbeddedPostgres (connections: number): Promise<EmbeddedPostgres> {
  const db = await PGlite.create()
  const listeners: Listener[] = []
  tapNotifications(db, listeners)
  const port = await freePort()
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: connections })
  await server.start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async onNotification (channels, listener) {
      // the one backend must LISTEN, or a NOTIFY is dropped before it is sent
      for (const channel of channels) await db.exec(`LISTEN ${channel}`)
      listeners.push(listener)
    },
    async close () {
      await server.stop()
      await db.close()
    }
  }
}
