// The express-session reference's cookies for wrk, one Cookie header a line
// (line n for session n): Lua cannot compute their HMAC signatures itself.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup } from './cleanup.ts'
import { cookieHeader } from './express-sessions.ts'

export interface ExpressCookies {
  /** a fresh signing secret for this run */
  secret: string
  file: string
}

export function writeExpressCookies (sessions: number): ExpressCookies {
  const secret = randomBytes(32).toString('hex')
  const dir = mkdtempSync(join(tmpdir(), 'sv-bench-express-'))
  onCleanup('express cookie file', () => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'cookies.txt')
  const lines: string[] = []
  for (let n = 1; n <= sessions; n++) lines.push(cookieHeader(n, secret))
  writeFileSync(file, lines.join('\n') + '\n')
  return { secret, file }
}
