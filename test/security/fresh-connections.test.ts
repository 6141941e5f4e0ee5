import { createConnection } from 'node:net'
import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { testApp } from '../helpers/app.js'
import { sleep } from '../helpers/ports.js'

// Issue 11 saw 1-2 of 500 fuzzed requests on fresh connections (OPTIONS or
// DELETE /sessions/validate with a body) make the client report "Data after
// `Connection: close`": bytes after a response that said it was the last.
// Here the server's side, byte for byte on raw sockets: every such request,
// its body in one write or trickled after the headers, with and without a
// content type, with and without `Connection: close`, gets exactly one
// response and nothing after it.

const db = await freshDatabase(t)
const { app } = await testApp(t, { databaseUrl: db.url, waitForCache: false, env: { SERVICE_API_KEYS: 'k'.repeat(24) } })
await app.listen({ host: '127.0.0.1', port: 0 })
const { port } = app.server.address() as { port: number }

async function exchange (head: string, body: Buffer, split: number, delayMs: number): Promise<string> {
  return await new Promise(resolve => {
    let data = ''
    const socket = createConnection(port, '127.0.0.1', async () => {
      socket.write(head)
      if (split > 0) {
        await sleep(delayMs)
        socket.write(body.subarray(0, split))
        await sleep(delayMs)
      }
      if (!socket.destroyed) socket.write(body.subarray(split), () => {})
    })
    socket.on('data', d => { data += d })
    socket.on('error', () => {})
    socket.on('close', () => resolve(data))
    setTimeout(() => socket.end(), 400)
  })
}

t.test('OPTIONS, DELETE and POST with a body get one response and nothing after it', async t => {
  let cases = 0
  for (const method of ['OPTIONS', 'DELETE', 'POST']) {
    for (const size of [15, 5000]) {
      for (const type of [undefined, 'application/json']) {
        for (const close of [false, true]) {
          for (const [split, delay] of [[0, 0], [1, 20]] as const) {
            const body = Buffer.from(`{"token":"${'a'.repeat(size - 12)}"}`)
            const head = `${method} /sessions/validate HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}` +
              `${type !== undefined ? `Content-Type: ${type}\r\n` : ''}Content-Length: ${body.length}\r\n\r\n`
            const out = await exchange(head, body, split, delay)
            const statuses = out.match(/^HTTP\/1\.1 \d+/gm) ?? []
            const what = `${method} ${size} B ${type ?? 'no type'} ${close ? 'close' : 'keep-alive'} ${split > 0 ? 'trickled' : 'one write'}`
            t.equal(statuses.length, 1, `${what}: one response (${statuses.join(', ')})`)
            const length = Number(/content-length: (\d+)/i.exec(out)?.[1])
            t.equal(out.length - out.indexOf('\r\n\r\n') - 4, length, `${what}: nothing after its body`)
            cases++
          }
        }
      }
    }
  }
  t.equal(cases, 48)
})
