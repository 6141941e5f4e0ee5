// Reads one cookie from a Cookie request header (RFC 6265 §5.4: `name=value`
// pairs separated by `;`). One name is looked for, so no object is built.

const SPACE = 32
const TAB = 9
const EQUALS = 61
const QUOTE = 34

/**
 * The first cookie called `name` (browsers send the most specific path first),
 * its surrounding double quotes removed. Nothing is decoded: the value is the
 * token as the application set it.
 */
export function cookieValue (header: string, name: string): string | undefined {
  let start = 0
  while (start < header.length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    let i = start
    while (i < end && (header.charCodeAt(i) === SPACE || header.charCodeAt(i) === TAB)) i++
    if (header.startsWith(name, i) && header.charCodeAt(i + name.length) === EQUALS) {
      const value = header.slice(i + name.length + 1, end).trim()
      const quoted = value.length >= 2 && value.charCodeAt(0) === QUOTE && value.charCodeAt(value.length - 1) === QUOTE
      return quoted ? value.slice(1, -1) : value
    }
    start = end + 1
  }
  return undefined
}
