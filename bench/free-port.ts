import { createServer } from 'node:net'

// The OS picks a free port on loopback; a small race with other users of the
// machine is possible, and a failed start then names the port.
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
