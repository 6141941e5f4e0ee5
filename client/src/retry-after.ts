// Retry-After (RFC 9110): delay-seconds or an HTTP-date, as milliseconds from now.
export function retryAfterMs (value: string | string[] | undefined, now = Date.now()): number | undefined {
  const header = Array.isArray(value) ? value[0] : value
  if (header === undefined) return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  // every HTTP-date form starts with a day name; Date.parse would take "-1" for a year
  if (!/^[A-Za-z]{3}/.test(text)) return undefined
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

// Whole seconds for a Retry-After we send on: at least 1, so "now" is never promised.
export function retryAfterSeconds (ms: number | undefined): string {
  return String(Math.max(1, Math.ceil((ms ?? 1000) / 1000)))
}
