// Open-loop load at a fixed rate (what wrk2's -R does; Debian ships only wrk):
// request i is due at start + i / rate whether or not earlier ones answered,
// and its latency counts from when it was due, so a stall is not hidden by
// the generator politely waiting (no coordinated omission).
// Prints one line: BENCH_JSON {...}. Run by fixed-rate-run.ts.
import { Agent, request } from 'node:http'
import { parseArgs } from 'node:util'
import { percentile } from './stats.ts'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    lo: { type: 'string' },
    hi: { type: 'string' },
    connections: { type: 'string' }
  }
})
const url = new URL(values.url ?? '')
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const warmup = Number(values.warmup ?? '1')
const lo = Number(values.lo)
const hi = Number(values.hi)
const connections = Number(values.connections ?? '64')
if (url.hostname !== '127.0.0.1' || !(rate > 0) || !(seconds > 0) || !(hi >= lo)) {
  throw new Error('usage: fixed-rate.ts --url http://127.0.0.1:<port>/path --rate N --seconds N --lo N --hi N')
}

const agent = new Agent({ keepAlive: true, maxSockets: connections })
const total = Math.round(rate * (warmup + seconds))
const measuredFrom = Math.round(rate * warmup)
const latencies = new Float64Array(total - measuredFrom)
let recorded = 0
let completed = 0
let errors = 0
let maxLateMs = 0

function send (due: number, measured: boolean): void {
  const body = `{"token":"tok-${lo + Math.floor(Math.random() * (hi - lo + 1))}"}`
  const req = request({
    agent,
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
  }, res => {
    res.resume()
    res.on('end', () => {
      completed++
      if (res.statusCode !== 200) errors++
      if (measured) latencies[recorded++] = performance.now() - due
    })
  })
  req.on('error', () => { completed++; errors++ })
  req.end(body)
}

const start = performance.now() + 50
let sent = 0
await new Promise<void>(resolve => {
  // 1 ms ticks, each sending every request due by now: a busy loop would take
  // the CPU that the server under test needs.
  const tick = () => {
    const now = performance.now()
    const due = Math.min(total, Math.floor((now - start) * rate / 1000) + 1)
    if (sent < due) maxLateMs = Math.max(maxLateMs, now - (start + (sent * 1000) / rate))
    while (sent < due) {
      send(start + (sent * 1000) / rate, sent >= measuredFrom)
      sent++
    }
    if (sent < total) setTimeout(tick, 1)
    else resolve()
  }
  setTimeout(tick, 50)
})

// answers still in flight get a bounded time to arrive
const deadline = performance.now() + 10_000
const outstanding = () => completed < total && performance.now() < deadline
while (outstanding()) await new Promise(resolve => setTimeout(resolve, 10))
agent.destroy()

const sorted = latencies.subarray(0, recorded).sort()
const result = {
  rate,
  sent,
  completed,
  errors,
  lost: total - completed,
  measured: recorded,
  achievedRps: recorded / seconds,
  maxLateMs,
  p50: percentile(sorted, 50),
  p99: percentile(sorted, 99),
  p999: percentile(sorted, 99.9),
  max: recorded === 0 ? Number.NaN : sorted[recorded - 1]
}
process.stdout.write(`BENCH_JSON ${JSON.stringify(result)}\n`)
