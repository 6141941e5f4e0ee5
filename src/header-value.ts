// Identity values (an email, a username) come from the database and may hold
// anything; a header value must not. Plain values go out unchanged; any other
// is percent-encoded UTF-8, so `decodeURIComponent` always gives the exact value.

const PLAIN = /^[\x21-\x24\x26-\x7e]*$/ // visible ASCII but `%`

export function headerValue (value: string | null): string {
  if (value === null) return ''
  if (PLAIN.test(value)) return value
  let encoded = ''
  for (const byte of Buffer.from(value, 'utf8')) {
    encoded += byte > 0x20 && byte < 0x7f && byte !== 0x25
      ? String.fromCharCode(byte)
      : `%${byte < 16 ? '0' : ''}${byte.toString(16).toUpperCase()}`
  }
  return encoded
}
