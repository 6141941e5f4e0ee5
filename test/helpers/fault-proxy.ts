import { createServer, connect, type Socket } from 'node:net'

interface Teardown { teardown(fn: () => unknown): void }

// A TCP proxy on loopback between the service and a dependency, to make that
// dependency unreachable (cut) and reachable again (restore) on demand.
export interface FaultProxy {
  port: number
  cut(): void
  restore(): void
}

export async function faultProxy (t: Teardown, targetPort: number, targetHost = '127.0.0.1'): Promise<FaultProxy> {
  let open = true
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    if (!open) { client.destroy(); return }
    const upstream = connect(targetPort, targetHost)
    sockets.add(client)
    sockets.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  t.teardown(() => new Promise<void>(resolve => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  }))
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    cut () {
      open = false
      for (const s of sockets) s.destroy()
      sockets.clear()
    },
    restore () { open = true }
  }
}
