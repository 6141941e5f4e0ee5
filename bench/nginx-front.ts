// nginx in front of a stand-in app, twice: straight through, and with the
// forward-auth check of deploy/forward-auth/nginx.conf (the README's) asking
// the service. Optional: undefined, with the reason, when nginx is missing.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startChild, waitUntilServing, type Child } from './children.ts'
import { onCleanup } from './cleanup.ts'
import { freePort } from '../src/free-port.ts'

export interface NginxFront {
  child: Child
  /** nginx proxying to the app, no auth */
  direct: string
  /** nginx asking GET /forward-auth first (auth_request), then proxying to the app */
  forwardAuth: string
}

const TEMPLATE = new URL('../deploy/forward-auth/nginx.conf', import.meta.url)

export async function startNginxFront (servicePort: number): Promise<NginxFront | string> {
  if (spawnSync('nginx', ['-v']).error !== undefined) return 'nginx is not on PATH (Debian: apt-get install nginx)'
  const dir = mkdtempSync(join(tmpdir(), 'sv-bench-nginx-'))
  onCleanup('nginx folder', () => rmSync(dir, { recursive: true, force: true }))
  const [app, direct, forwardAuth] = [await freePort(), await freePort(), await freePort()]
  const site = readFileSync(TEMPLATE, 'utf8')
    .replace('listen 80;', `listen 127.0.0.1:${forwardAuth};`)
    .replaceAll('session-validator.internal:3000', `127.0.0.1:${servicePort}`)
    .replaceAll('app.internal:8080', `127.0.0.1:${app}`)
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(k => `${k}_temp_path ${join(dir, k)};`).join(' ')
  writeFileSync(join(dir, 'nginx.conf'), `pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} error;
worker_processes 1;
events { worker_connections 4096; }
http {
  access_log off;
  ${temp}
  ${site}
  # the stand-in app: as cheap as an answer gets, so the difference is the auth call
  server { listen 127.0.0.1:${app}; location / { return 200 "ok\\n"; } }
  server {
    listen 127.0.0.1:${direct};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`)
  const child = startChild('nginx', 'nginx', ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;'])
  const front = { child, direct: `http://127.0.0.1:${direct}/page`, forwardAuth: `http://127.0.0.1:${forwardAuth}/page` }
  await waitUntilServing(child, { url: front.direct })
  const probe = await fetch(front.forwardAuth, { headers: { cookie: 'sv_session=tok-1' } })
  await probe.arrayBuffer()
  if (probe.status !== 200) throw new Error(`forward auth through nginx answered ${probe.status} for a seeded session`)
  return front
}
