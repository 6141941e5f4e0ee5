import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from './ports.js'

interface Teardown { teardown(fn: () => unknown): void }

export interface ProxyProcess {
  port: number
  pid: number
  stderr: () => string
}

/** A folder of the test's own, removed at the end. */
export function tempDir (t: Teardown, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sv-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const accepts = (port: number) => new Promise<boolean>(resolve => {
  const socket = connect(port, '127.0.0.1')
  socket.once('connect', () => { socket.destroy(); resolve(true) })
  socket.once('error', () => resolve(false))
})

// A proxy (nginx, Caddy) run in the foreground by the test, on a loopback port
// it was configured with, and stopped by its PID: SIGTERM, SIGKILL after 5 s.
export async function startProxy (t: Teardown, command: string, args: string[], port: number, env: Record<string, string> = {}): Promise<ProxyProcess> {
  const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', d => { err += d })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(killer)
  })
  await waitFor(`${command} on port ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`${command} exited ${child.exitCode}: ${err}`)
    return await accepts(port)
  }, 10_000, 50)
  return { port, pid: child.pid!, stderr: () => err }
}
