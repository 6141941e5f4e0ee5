// An upstream that reads each request and never answers: it tells when a
// request arrived and when the client gave it up (its connection closed).
import { request } from 'node:http'
import { createServer, type Socket } from 'node:net'

interface Teardown { teardown(fn: () => unknown): void }

export interface SilentUpstream {
  url: string
  /**
   * Calls `url` (a caller's app that checks sessions here) with a Bearer
   * token, disconnects once that check has reached this upstream, and
   * resolves with how long, in ms, the check's connection here outlived it.
   */
  leave: (url: string, method?: string) => Promise<number>
}

export async function silentUpstream (t: Teardown): Promise<SilentUpstream> {
  const sockets = new Set<Socket>()
  let onArrival = () => {}
  let onClose = () => {}
  const server = createServer(socket => {
    sockets.add(socket)
    socket.once('data', () => onArrival())
    socket.once('close', () => { sockets.delete(socket); onClose() })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    async leave (url, method = 'GET') {
      const arrived = new Promise<void>(resolve => { onArrival = resolve })
      const abandoned = new Promise<void>(resolve => { onClose = resolve })
      const req = request(url, { method, headers: { authorization: 'Bearer some-token' } })
      req.on('error', () => {})
      req.end()
      await arrived
      const start = performance.now()
      req.destroy()
      await abandoned
      return performance.now() - start
    }
  }
}
