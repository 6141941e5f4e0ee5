import { connect, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { faultProxy } from '../helpers/fault-proxy.ts'
import { sleep, waitFor } from '../helpers/ports.ts'

// The fault proxy as the soak uses it, on real sockets: a partition holds
// traffic and closes nothing, resets are RSTs, and it names the ports its
// dependency sees.

async function echoServer (t: Test): Promise<{ port: number, peers: Set<number> }> {
  const peers = new Set<number>()
  const sockets = new Set<Socket>()
  const server = createServer(s => {
    sockets.add(s)
    peers.add(s.remotePort!)
    s.on('error', () => {}).on('close', () => sockets.delete(s))
    s.pipe(s)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return { port: (server.address() as { port: number }).port, peers }
}

interface Client { socket: Socket, received: () => string, error: () => NodeJS.ErrnoException | undefined, closed: () => boolean }

async function client (port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1')
  let data = ''
  let error: NodeJS.ErrnoException | undefined
  let closed = false
  socket.on('data', d => { data += d }).on('error', e => { error = e }).on('close', () => { closed = true })
  await new Promise(resolve => socket.once('connect', resolve))
  return { socket, received: () => data, error: () => error, closed: () => closed }
}

t.test('a held proxy passes nothing and closes nothing; restored, it delivers what was held, new connections too', async t => {
  const echo = await echoServer(t)
  const proxy = await faultProxy(t, echo.port)
  const before = await client(proxy.port)
  t.teardown(() => before.socket.destroy())
  before.socket.write('a')
  await waitFor('the echo', () => before.received() === 'a')
  proxy.hold()
  before.socket.write('b')
  const during = await client(proxy.port)
  t.teardown(() => during.socket.destroy())
  during.socket.write('c')
  await sleep(300)
  t.equal(before.received(), 'a', 'nothing came back while held')
  t.equal(during.received(), '', 'nor for a connection made while held')
  t.equal(echo.peers.size, 1, 'which never reached the dependency')
  t.notOk(before.closed() || during.closed(), 'and nothing was closed')
  proxy.restore()
  await waitFor('the held data to arrive', () => before.received() === 'ab' && during.received() === 'c')
  t.equal(echo.peers.size, 2)
})

t.test('reset sends an RST both ways; its upstream ports are those the dependency sees', async t => {
  const echo = await echoServer(t)
  const proxy = await faultProxy(t, echo.port)
  const c = await client(proxy.port)
  c.socket.write('x')
  await waitFor('the echo', () => c.received() === 'x')
  t.same([...proxy.upstreamPorts()], [...echo.peers], 'the dependency\'s view of its client')
  t.equal(proxy.reset(5), 1, 'one connection to reset')
  await waitFor('the reset', () => c.closed())
  t.equal(c.error()?.code, 'ECONNRESET')
  t.equal(proxy.upstreamPorts().size, 0)
})

t.test('new connections are reset after their first chunk when asked, and no longer after', async t => {
  const echo = await echoServer(t)
  const proxy = await faultProxy(t, echo.port)
  proxy.resetNew(1, 1)
  const doomed = await client(proxy.port)
  doomed.socket.write('startup')
  await waitFor('the reset', () => doomed.closed())
  t.equal(doomed.error()?.code, 'ECONNRESET')
  proxy.resetNew(0, 1)
  const fine = await client(proxy.port)
  t.teardown(() => fine.socket.destroy())
  fine.socket.write('y')
  await waitFor('the echo', () => fine.received() === 'y')
  t.notOk(fine.closed())
})
