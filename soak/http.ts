// The soak's HTTP client for one instance: keep-alive connections, a bounded
// wait, and one retry when a reused connection turns out closed before any
// answer (the keep-alive race every client meets; the request never ran).
import { Agent, request, type IncomingHttpHeaders } from 'node:http'

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: unknown
}

export interface Client {
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Answer>
  /** Drops the kept connections (the process behind them was replaced). */
  reset(): void
}

export const ANSWER_TIMEOUT_MS = 10_000

export function httpClient (port: number): Client {
  let agent = new Agent({ keepAlive: true, maxSockets: 32 })

  const once = (path: string, payload: string, headers: Record<string, string>) => new Promise<Answer>((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
      timeout: ANSWER_TIMEOUT_MS
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        let body: unknown
        try {
          body = text === '' ? undefined : JSON.parse(text)
        } catch {
          body = text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      })
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${ANSWER_TIMEOUT_MS} ms`), { code: 'TIMEOUT' })))
    req.on('error', err => reject(Object.assign(err, { reused: req.reusedSocket })))
    req.end(payload)
  })

  return {
    async post (path, body, headers = {}) {
      const payload = JSON.stringify(body)
      try {
        return await once(path, payload, headers)
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { reused?: boolean }
        if (e.reused === true && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) return await once(path, payload, headers)
        throw err
      }
    },
    reset () {
      agent.destroy()
      agent = new Agent({ keepAlive: true, maxSockets: 32 })
    }
  }
}
