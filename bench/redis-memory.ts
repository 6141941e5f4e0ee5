import type { Redis } from 'ioredis'

export interface KeySample {
  kind: string
  keys: number
  bytesEach: number
  encodings: Record<string, number>
}

export interface MemoryBreakdown {
  sessions: number
  usedMemoryDelta: number
  bytesPerSession: number
  entryKeys: number
  indexKeys: number
  otherKeys: number
  samples: KeySample[]
  /** one entry: its key's and its value's length */
  example: { keyBytes: number, valueBytes: number } | undefined
}

const SAMPLE = 1000
const MAX_SCAN_STEPS = 100_000

function kindOf (key: string): 'entry' | 'index' | 'other' {
  if (key.includes('user:{')) return 'index'
  if (/\{[0-9a-f]{64}\}$/.test(key)) return 'entry'
  return 'other'
}

// Counts the keys by kind (SCAN: this is our own server) and asks Redis what a
// sample of each costs and how it is encoded, to say where the bytes go.
export async function breakdown (client: Redis, usedMemoryDelta: number): Promise<MemoryBreakdown> {
  const counts = { entry: 0, index: 0, other: 0 }
  const picked: Record<'entry' | 'index' | 'other', string[]> = { entry: [], index: [], other: [] }
  let cursor = '0'
  for (let step = 0; step < MAX_SCAN_STEPS; step++) {
    const [next, keys] = await client.scan(cursor, 'COUNT', 1000)
    for (const key of keys) {
      const kind = kindOf(key)
      counts[kind]++
      if (picked[kind].length < SAMPLE) picked[kind].push(key)
    }
    cursor = next
    if (cursor === '0') break
  }
  const samples: KeySample[] = []
  for (const kind of ['entry', 'index', 'other'] as const) {
    const keys = picked[kind]
    if (keys.length === 0) continue
    let bytes = 0
    const encodings: Record<string, number> = {}
    for (const key of keys) {
      bytes += Number(await client.memory('USAGE', key, 'SAMPLES', '0') ?? 0)
      const encoding = String(await client.object('ENCODING', key))
      encodings[encoding] = (encodings[encoding] ?? 0) + 1
    }
    samples.push({ kind, keys: counts[kind], bytesEach: Math.round(bytes / keys.length), encodings })
  }
  const first = picked.entry[0]
  // an entry as one string; as a hash (a build before layout 1, under --build), its fields and values
  const valueBytes = async (key: string) => await client.type(key) === 'string'
    ? await client.strlen(key)
    : Object.entries(await client.hgetall(key)).reduce((sum, [f, v]) => sum + f.length + Buffer.byteLength(v), 0)
  const example = first === undefined ? undefined : { keyBytes: Buffer.byteLength(first), valueBytes: await valueBytes(first) }
  return {
    sessions: counts.entry,
    usedMemoryDelta,
    bytesPerSession: counts.entry === 0 ? Number.NaN : usedMemoryDelta / counts.entry,
    entryKeys: counts.entry,
    indexKeys: counts.index,
    otherKeys: counts.other,
    samples,
    example
  }
}
