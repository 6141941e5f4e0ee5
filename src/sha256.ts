// SHA-256, the service's one digest: token hashes (what Studio stores), and
// API keys and bearer secrets, held and compared only as digests.
import { hash } from 'node:crypto'

export function sha256Hex (value: string): string {
  return hash('sha256', value, 'hex')
}

export function sha256 (value: string): Buffer {
  return hash('sha256', value, 'buffer') as unknown as Buffer
}

export function sha256Latin1 (value: string): string {
  return hash('sha256', value, 'binary')
}
