import { request } from 'node:http'
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

// Issue 19: a body sent without framing (Node's own client does it for
// OPTIONS, GET and HEAD with `agent: false`: `req.write(body)`, no length)
// follows a request that said `Connection: close`. Those bytes are no
// request: the request's own answer goes out, then the socket closes, and
// nothing is written after it — never Fastify's default `400 Bad Request`,
// neither after the answer (the client fails with "Data after `Connection:
// close`") nor instead of it.

interface Answer { statuses: string[], after: number, closedByServer: boolean }

// Sends `head` and then `extra`, either in the same write or once the answer's
// first bytes are in, and reads until the server closes (or 1.5 s pass).
async function answerTo (head: string, extra: Buffer, when: 'with the head' | 'after the answer', isHead: boolean, delayMs = 0): Promise<Answer> {
  return await new Promise(resolve => {
    let data = ''
    let closedByServer = false
    const socket = createConnection(port, '127.0.0.1', () => {
      socket.write(when === 'with the head' ? Buffer.concat([Buffer.from(head), extra]) : head)
    })
    socket.on('data', d => {
      const first = data === ''
      data += d
      if (first && when === 'after the answer' && extra.length > 0) setTimeout(() => socket.write(extra, () => {}), delayMs)
    })
    socket.on('end', () => { closedByServer = true })
    socket.on('error', () => {})
    const timer = setTimeout(() => socket.destroy(), 1500)
    socket.on('close', () => {
      clearTimeout(timer)
      const headEnd = data.indexOf('\r\n\r\n') + 4
      const length = isHead ? 0 : Number(/content-length: (\d+)/i.exec(data)?.[1] ?? 0)
      // a response glued to the previous one's body starts mid-line
      resolve({ statuses: data.match(/HTTP\/1\.1 \d{3}(?= )/g) ?? [], after: data.length - headEnd - length, closedByServer })
    })
  })
}

const UNFRAMED: Array<{ method: string, path: string, type?: string, extra: Buffer }> = [
  { method: 'OPTIONS', path: '/sessions/validate', extra: Buffer.from('{"token":"abc"}') },
  { method: 'OPTIONS', path: '/sessions/validate', extra: Buffer.from(JSON.stringify({ token: 'a'.repeat(5000) })) },
  { method: 'GET', path: '/forward-auth', extra: Buffer.from('{"token":"abc"}') },
  { method: 'HEAD', path: '/forward-auth', extra: Buffer.from(JSON.stringify({ token: 'a'.repeat(5000) })) },
  { method: 'GET', path: '/healthz', extra: Buffer.from('{"token":"abc"}') },
  // a Content-Length shorter than the body: the rest is no request either
  { method: 'POST', path: '/sessions/validate', type: 'application/json', extra: Buffer.from('"abc"}GET / HTTP/1.1\r\n\r\n') }
]

t.test('bytes after a request that said Connection: close: its own answer, then the socket closes, nothing after it', async t => {
  for (const c of UNFRAMED) {
    const body = c.method === 'POST' ? '{"token":' : ''
    const head = `${c.method} ${c.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` +
      `${c.type !== undefined ? `Content-Type: ${c.type}\r\n` : ''}${c.method === 'POST' ? `Content-Length: ${body.length}\r\n` : ''}\r\n${body}`
    const own = await answerTo(head, Buffer.alloc(0), 'with the head', c.method === 'HEAD')
    t.equal(own.statuses.length, 1, `${c.method} ${c.path} alone: ${own.statuses[0]}`)
    for (const when of ['with the head', 'after the answer'] as const) {
      const what = `${c.method} ${c.path} and ${c.extra.length} unframed bytes ${when}`
      const got = await answerTo(head, c.extra, when, c.method === 'HEAD')
      t.same(got.statuses, own.statuses, `${what}: its own answer (${own.statuses[0]}) and no other`)
      t.equal(got.after, 0, `${what}: nothing after it`)
      t.ok(got.closedByServer, `${what}: and the server closed the connection`)
    }
  }
})

t.test('a request that said Connection: close and whose own body does not parse still gets Fastify\'s 400', async t => {
  // with the key, so that the route reads the body
  const head = `POST /sessions/validate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-api-key: ${'k'.repeat(24)}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`
  const got = await answerTo(head, Buffer.from('5\r\n{"tok\r\nzz\r\n'), 'with the head', false)
  t.same(got.statuses, ['HTTP/1.1 400'], 'a 400, at once: the request was not read whole, and waits for nothing')
  t.ok(got.closedByServer)
})

t.test('a kept-alive connection whose next request does not parse still gets Fastify\'s 400', async t => {
  const got = await answerTo('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', Buffer.from('NOT A REQUEST\r\n\r\n'), 'after the answer', false, 100)
  t.same(got.statuses, ['HTTP/1.1 200', 'HTTP/1.1 400'], 'the answer, then a 400 for the bytes that do not parse')
  t.ok(got.closedByServer)
})

t.test('Node\'s own client, agent: false, a body written without a length: no "Data after Connection: close"', async t => {
  for (const [method, path] of [['OPTIONS', '/sessions/validate'], ['GET', '/forward-auth'], ['HEAD', '/forward-auth']] as const) {
    const seen = new Map<string, number>()
    for (let i = 0; i < 60; i++) {
      const body = i % 2 === 1 ? JSON.stringify({ token: 'a'.repeat(5000) }) : '{"token":"abc"}'
      const outcome = await new Promise<string>(resolve => {
        const req = request({ host: '127.0.0.1', port, method, path, agent: false }, res => {
          res.resume()
          res.on('end', () => resolve(String(res.statusCode)))
          res.on('error', err => resolve(err.message))
        })
        req.on('error', err => resolve(err.message))
        req.write(body)
        req.end()
      })
      seen.set(outcome, (seen.get(outcome) ?? 0) + 1)
    }
    const expected = method === 'OPTIONS' ? '404' : '403'
    t.same(Object.fromEntries(seen), { [expected]: 60 }, `${method} ${path}: 60 answers, each ${expected}`)
  }
})
