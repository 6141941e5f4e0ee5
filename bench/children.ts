import { spawn, type ChildProcess } from 'node:child_process'
import { onCleanup } from './cleanup.ts'
import { sleep } from './stats.ts'

export interface Child {
  name: string
  proc: ChildProcess
  exited: Promise<number | null>
  output(): string
  stop(): Promise<void>
}

const TAIL = 8192
// Only these pass through: the developer's own REDIS_URL, SERVICE_API_KEYS or
// DATABASE_POOL_MAX must not change what is measured.
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']

// Starts a process whose stop is registered for cleanup at once, so that an
// error anywhere later still ends it.
export function startChild (name: string, command: string, args: string[], env: Record<string, string> = {}): Child {
  const base: Record<string, string> = {}
  for (const name of INHERITED) if (process.env[name] !== undefined) base[name] = process.env[name]
  const proc = spawn(command, args, { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let tail = ''
  const keep = (chunk: Buffer) => { tail = (tail + chunk.toString()).slice(-TAIL) }
  proc.stdout!.on('data', keep)
  proc.stderr!.on('data', keep)
  const exited = new Promise<number | null>(resolve => {
    proc.on('exit', code => resolve(code))
    proc.on('error', err => { keep(Buffer.from(`spawn failed: ${err.message}\n`)); resolve(-1) })
  })
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      // a graceful stop lets --cpu-prof write its profile; past 10 s, force it
      const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])
      if (!done) {
        proc.kill('SIGKILL')
        await Promise.race([exited, sleep(2000)])
      }
    })()
    return stopping
  }
  const forget = onCleanup(name, stop)
  exited.then(forget, forget)
  return { name, proc, exited, output: () => tail, stop }
}

export interface Probe {
  url: string
  method?: string
  body?: string
}

// Polls until the child answers 2xx, bounded in time; a child that exits
// first fails at once with the end of its output.
export async function waitUntilServing (child: Child, probe: Probe, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`${child.name} exited before serving:\n${child.output()}`)
    }
    try {
      const res = await fetch(probe.url, {
        method: probe.method ?? 'GET',
        body: probe.body,
        headers: probe.body === undefined ? {} : { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(2000)
      })
      await res.arrayBuffer()
      if (res.ok) return
      last = `HTTP ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await sleep(100)
  }
  throw new Error(`${child.name} did not serve within ${timeoutMs} ms (${last}):\n${child.output()}`)
}
