// What the doctor found: one line per check, for people (✔/✖) or as JSON.

export interface Check {
  name: string
  ok: boolean
  /** Our own words and numbers only: never a URL, password, token or key. */
  detail: string
  /** Figures behind the detail, for --json readers. */
  data?: Record<string, unknown>
}

export interface Report {
  ok: boolean
  checks: Check[]
}

export const pass = (name: string, detail: string, data?: Record<string, unknown>): Check => ({ name, ok: true, detail, ...(data === undefined ? {} : { data }) })
export const fail = (name: string, detail: string, data?: Record<string, unknown>): Check => ({ name, ok: false, detail, ...(data === undefined ? {} : { data }) })

export function report (checks: Check[]): Report {
  return { ok: checks.every(c => c.ok), checks }
}

export function formatText (r: Report): string {
  const lines = r.checks.map(c => `${c.ok ? '✔' : '✖'} ${c.name} — ${c.detail}`)
  const failed = r.checks.filter(c => !c.ok).length
  lines.push(failed === 0 ? `all ${r.checks.length} checks passed` : `${failed} of ${r.checks.length} checks failed`)
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
