import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { waitFor } from './ports.js'

interface Teardown { teardown(fn: () => unknown): void }

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface ServerProcess {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

// The built service (`npm test` builds first), as `npm start` runs it.
export function startServer (t: Teardown, env: Record<string, string>, cwd = ROOT): ServerProcess {
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', d => { out += d })
  child.stderr!.on('data', d => { err += d })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return { child, stdout: () => out, stderr: () => err, exited }
}

export async function waitForHttp (url: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(url, async () => {
    try {
      return (await fetch(url)).status < 500
    } catch {
      return false
    }
  }, timeoutMs, 100)
}
