import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { startProxy, tempDir, type ProxyProcess } from './proxy-process.js'

interface Teardown { teardown(fn: () => unknown): void }

/**
 * Debian's nginx with a prefix folder of its own: `site` is an http-context
 * snippet whose `listen 80;` (or `listen 80 ssl;`) becomes a free loopback port.
 */
export async function startNginx (t: Teardown, site: string): Promise<ProxyProcess> {
  const dir = tempDir(t, 'nginx')
  const port = await freePort()
  writeFileSync(join(dir, 'site.conf'), site.replace(/listen 80( ssl)?;/, (_, ssl: string | undefined) => `listen 127.0.0.1:${port}${ssl ?? ''};`))
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(k => `${k}_temp_path ${join(dir, k)};`).join('\n  ')
  writeFileSync(join(dir, 'nginx.conf'), `
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  ${temp}
  include ${join(dir, 'site.conf')};
}
`)
  return await startProxy(t, 'nginx', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;'], port)
}
