import { createServer, type IncomingHttpHeaders } from 'node:http'

interface Teardown { teardown(fn: () => unknown): void }

// The app behind a reverse proxy: records every request that reaches it and
// echoes the headers it got, so a test sees exactly what passed the proxy.
export interface EchoUpstream {
  port: number
  readonly seen: Array<{ method: string, url: string, headers: IncomingHttpHeaders }>
}

export async function echoUpstream (t: Teardown): Promise<EchoUpstream> {
  const seen: EchoUpstream['seen'] = []
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(req.headers))
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const address = server.address()
  return { port: typeof address === 'object' && address !== null ? address.port : 0, seen }
}
