// Writes client/src/openapi.ts from a running service's OpenAPI document:
//   node client/scripts/generate-types.ts [base-url]
// Without a URL it starts the built service (dist/server.js) on its embedded
// demo Postgres for the time it takes; `npm run build` first.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fetchDocument, ROOT, TYPES_FILE, typesFrom } from './openapi-types.ts'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise(resolve => server.close(resolve))
  return typeof address === 'object' && address !== null ? address.port : 0
}

async function fromDemoService (): Promise<string> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(ROOT, 'dist/server.js')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit']
  })
  try {
    const base = `http://127.0.0.1:${port}`
    for (const until = Date.now() + 60_000; Date.now() < until;) {
      try {
        return await typesFrom(await fetchDocument(base))
      } catch (err) {
        if (child.exitCode !== null) throw new Error('dist/server.js exited; run `npm run build` first', { cause: err })
        await new Promise(resolve => setTimeout(resolve, 250))
      }
    }
    throw new Error('the service did not answer GET /docs/json within 60 s')
  } finally {
    child.kill('SIGTERM')
  }
}

const url = process.argv[2]
const types = url === undefined ? await fromDemoService() : await typesFrom(await fetchDocument(url, process.env.SERVICE_API_KEY))
writeFileSync(TYPES_FILE, types)
console.log(`wrote ${TYPES_FILE}`)
