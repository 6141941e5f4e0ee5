import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { startProxy, tempDir, type ProxyProcess } from './proxy-process.js'

interface Teardown { teardown(fn: () => unknown): void }

/**
 * Debian's Caddy with its data and config folders in a folder of its own, no
 * admin endpoint and no automatic HTTPS: `site`'s `http://app.example.com`
 * becomes a free loopback port.
 */
export async function startCaddy (t: Teardown, site: string): Promise<ProxyProcess> {
  const dir = tempDir(t, 'caddy')
  const port = await freePort()
  const file = join(dir, 'Caddyfile')
  writeFileSync(file, `{\n\tadmin off\n\tauto_https off\n}\n\n${site.replace('http://app.example.com', `http://127.0.0.1:${port}`)}`)
  return await startProxy(t, 'caddy', ['run', '--config', file, '--adapter', 'caddyfile'], port, {
    HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'data')
  })
}
