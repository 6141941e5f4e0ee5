// What the server writes when a connection sends bytes it cannot parse: never
// anything after a response that is, or was announced as, the connection's last.
import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'

// The response Node is writing on this socket, if any (Node's own default
// handler reads the same field for the same decision).
const inFlight = (socket: Socket) => (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined

const ANSWERS: Record<string, { status: number, message: string, label: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'Client Timeout', label: 'timeout' },
  HPE_HEADER_OVERFLOW: { status: 431, message: 'Exceeded maximum allowed HTTP header size', label: 'header_overflow' }
}
const OTHERWISE = { status: 400, message: 'Client Error', label: 'error' }

/**
 * Bytes after a request that said `Connection: close` (a client writing a
 * body it did not frame: Node's own client does, for OPTIONS or GET with
 * `agent: false`) are no request: RFC 9112 §9.6 has the server process no
 * further request on that connection. Fastify's default handler answers them
 * with a `400` — after the real response when that one has gone out already,
 * which the client then reads as "Data after `Connection: close`", or instead
 * of it. Here such bytes are ignored: the response goes out, and the socket
 * closes after it as it would have. Likewise, once a response's headers are
 * on the wire nothing is written in the middle of it (Node's own rule); the
 * connection closes when it is done. Every other case is Fastify's default,
 * a JSON 400 (408, 431), then the socket is destroyed: among them a request
 * whose own body does not parse (a bad chunk), which was not read whole.
 */
export function clientErrorHandler (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const response = inFlight(socket)
  // complete: the request was read whole, so the bytes that failed came after it
  if (response !== undefined && (response.headersSent || (!response.shouldKeepAlive && response.req.complete))) {
    this.log.trace({ code: err.code }, 'client sent bytes after its last request; ignored')
    // a kept-alive one is closed too: its parser has failed
    if (response.shouldKeepAlive) response.once('finish', () => { socket.destroySoon() })
    return
  }
  const answer = ANSWERS[err.code ?? ''] ?? OTHERWISE
  const body = `{"error":"${STATUS_CODES[answer.status]}","message":"${answer.message}","statusCode":${answer.status}}`
  this.log.trace({ code: err.code }, `client ${answer.label}`)
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nContent-Length: ${body.length}\r\nContent-Type: application/json\r\n\r\n${body}`)
  }
  socket.destroy(err)
}
