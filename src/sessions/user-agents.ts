// User agents, the largest field of a cached session, are made of a few
// well-known fragments. As in HTTP/2's static header table, each fragment of
// this table is stored as one byte (0x80 + its index) in a Redis entry: a
// typical browser's 110 bytes become about 25. Only plain ASCII user agents
// are packed (so a byte from 0x80 up is always a fragment); any other is
// stored as it is, and says so.

// Longest first where one contains another: the pattern tries them in order.
const FRAGMENTS = [
  ') AppleWebKit/537.36 (KHTML, like Gecko) ',
  ') AppleWebKit/605.1.15 (KHTML, like Gecko) ',
  ') Gecko/20100101 Firefox/',
  'Macintosh; Intel Mac OS X ',
  'Windows NT 10.0; Win64; x64',
  'iPhone; CPU iPhone OS ',
  'Mobile Safari/537.36',
  'Mozilla/5.0 (',
  ' Mobile/15E148 ',
  'Linux; Android ',
  'Safari/605.1.15',
  ' Safari/537.36',
  'X11; Linux x86_64',
  ' like Mac OS X',
  'SamsungBrowser/',
  'Safari/604.1',
  'iPad; CPU OS ',
  'Version/',
  'Chrome/',
  '.0.0.0',
  '10_15_7',
  'CriOS/',
  'FxiOS/',
  '; rv:',
  ' Edg/',
  ' OPR/',
  '; K)'
]

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
const PATTERN = new RegExp(FRAGMENTS.map(escape).join('|'), 'g')
const CODE = new Map(FRAGMENTS.map((f, i) => [f, String.fromCharCode(0x80 + i)]))
// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/

/** The packed user agent as latin1 text, or undefined when it is not plain ASCII (stored as UTF-8 instead). */
export function packUserAgent (ua: string): string | undefined {
  if (!ASCII.test(ua)) return undefined
  return ua.replace(PATTERN, m => CODE.get(m)!)
}

/** The user agent from its packed bytes. */
export function unpackUserAgent (bytes: Buffer, start: number, end: number): string {
  let ua = ''
  let from = start
  for (let i = start; i < end; i++) {
    const b = bytes[i]!
    if (b < 0x80) continue
    const fragment = FRAGMENTS[b - 0x80]
    if (fragment === undefined) throw new RangeError('unknown user agent fragment')
    ua += bytes.toString('latin1', from, i) + fragment
    from = i + 1
  }
  return ua + bytes.toString('latin1', from, end)
}
