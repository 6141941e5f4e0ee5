// What the doctor found: one line per check, for people (✔/⚠/✖) or as JSON.

/**
 * pass: as the service needs it. warn: the service works, but not as it is
 * recommended to run (shown; fails the run only under --strict). fail: the
 * service would not work, or would break one of its guarantees.
 */
export type Status = 'pass' | 'warn' | 'fail'

export interface Check {
  name: string
  status: Status
  /** Our own words and numbers only: never a URL, password, token or key. */
  detail: string
  /** Figures behind the detail, for --json readers. */
  data?: Record<string, unknown>
}

export interface Report {
  /** No check failed, and under --strict none warned either: the exit code is 0. */
  ok: boolean
  strict: boolean
  checks: Check[]
}

const check = (status: Status) => (name: string, detail: string, data?: Record<string, unknown>): Check =>
  ({ name, status, detail, ...(data === undefined ? {} : { data }) })
export const pass = check('pass')
export const warn = check('warn')
export const fail = check('fail')

export function report (checks: Check[], strict = false): Report {
  const ok = checks.every(c => c.status === 'pass' || (c.status === 'warn' && !strict))
  return { ok, strict, checks }
}

const MARK: Record<Status, string> = { pass: '✔', warn: '⚠', fail: '✖' }

export function formatText (r: Report): string {
  const lines = r.checks.map(c => `${MARK[c.status]} ${c.name} — ${c.detail}`)
  const total = r.checks.length
  const failed = r.checks.filter(c => c.status === 'fail').length
  const warned = r.checks.filter(c => c.status === 'warn').length
  const warnings = `${warned} warning${warned === 1 ? '' : 's'}`
  if (failed > 0) lines.push(`${failed} of ${total} checks failed${warned > 0 ? `, ${warnings}` : ''}`)
  else if (warned > 0) lines.push(`${total - warned} of ${total} checks passed, ${warnings}${r.strict ? ' (--strict: warnings fail)' : ''}`)
  else lines.push(`all ${total} checks passed`)
  return lines.join('\n') + '\n'
}

// A second line of defence: our messages are built from codes and numbers,
// but should a secret ever slip into one, it is masked here before printing.
export function redact (text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join('***')
  }
  return out
}
