// A free TCP port on loopback, picked by the OS (the embedded demo database,
// the tests and the benchmark all need one). Self-contained on purpose: the
// benchmark imports this file directly.
import { createServer } from 'node:net'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
