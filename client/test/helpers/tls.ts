// Certificates for the TLS tests, made by openssl in a folder of the test's
// own: self-signed, so a client trusts one only when given it as its CA.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../../../test/helpers/proxy-process.js'

interface Teardown { teardown(fn: () => unknown): void }

export interface Certificate {
  certFile: string
  keyFile: string
  /** PEM text, for a client's `ca`. */
  cert: string
}

/** A self-signed certificate naming `names` (`DNS:localhost`, `IP:127.0.0.1`). */
export function selfSigned (t: Teardown, names: string[]): Certificate {
  const dir = tempDir(t, 'tls')
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=session-validator test',
    '-addext', `subjectAltName=${names.join(',')}`], { stdio: 'ignore' })
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') }
}
