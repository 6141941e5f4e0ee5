import { createServer } from 'node:net'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

export interface EmbeddedPostgres {
  url: string
  close(): Promise<void>
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

// PGlite (Postgres compiled to WebAssembly, in memory) behind its socket
// server, so the very same driver and SQL run as in production. Its server
// takes one connection unless told otherwise; the pool and the listener need
// more, or the driver hangs waiting for a connection.
export async function startEmbeddedPostgres (connections: number): Promise<EmbeddedPostgres> {
  const db = await PGlite.create()
  const port = await freePort()
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: connections })
  await server.start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async close () {
      await server.stop()
      await db.close()
    }
  }
}
