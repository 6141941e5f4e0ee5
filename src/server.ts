// The process entry point: loads config, listens, shuts down gracefully.
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import { loadConfig, type Config } from './config.js'
import { app, serverOptions } from './app.js'
import { createSql } from './db/postgres.js'
import { migrate } from './migrate.js'
import type { EmbeddedPostgres } from './demo/embedded-postgres.js'
import { ConfigError, ExtraFieldsError } from './errors.js'

let config: Config
try {
  config = loadConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  // one line, naming the variable; never the value of a URL
  process.stderr.write(`invalid configuration: ${err.message}\n`)
  process.exit(1)
}

const fastify = Fastify(serverOptions(config))
let stopEmbedded: (() => Promise<void>) | undefined
let databaseUrl = config.databaseUrl
let demoToken: string | undefined
let notifications: EmbeddedPostgres | undefined

if (databaseUrl === undefined) {
  fastify.log.warn('DATABASE_URL is not set: running on an embedded, in-memory Postgres (PGlite) with demo data')
  const { startEmbeddedPostgres } = await import('./demo/embedded-postgres.js')
  const { seedDemo } = await import('./demo/seed.js')
  // the pool, the coherence prober and the seeding connection each need one
  const embedded = await startEmbeddedPostgres(config.databasePoolMax + 2)
  stopEmbedded = embedded.close
  notifications = embedded
  databaseUrl = embedded.url
  const sql = createSql({ ...config, databasePoolMax: 1 }, databaseUrl)
  await migrate(sql)
  demoToken = await seedDemo(sql)
  await sql.end({ timeout: 5 })
}

await fastify.register(app, { config, databaseUrl, ...(notifications !== undefined ? { notifications } : {}) })

closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  // the code, and where it was thrown (a file and line, never a message)
  if (err !== undefined) fastify.log.error({ code: (err as { code?: string }).code ?? err.name, at: /\n\s+at (.*)/.exec(err.stack ?? '')?.[1] }, 'shutting down after an error')
  else fastify.log.info({ signal }, 'shutting down')
  await fastify.close()
  await stopEmbedded?.()
})

try {
  await fastify.listen({ port: config.port, host: config.host })
} catch (err) {
  if (!(err instanceof ExtraFieldsError)) throw err
  process.stderr.write(`invalid configuration: ${err.message}\n`)
  await fastify.close()
  await stopEmbedded?.()
  process.exit(1)
}

if (demoToken !== undefined) {
  const port = (fastify.server.address() as { port: number }).port
  process.stdout.write([
    '',
    'Demo mode: a demo session token (valid for 7 days, in-memory database):',
    `  ${demoToken}`,
    'Try it:',
    `  curl -s -X POST http://localhost:${port}/sessions/validate -H 'content-type: application/json' -d '{"token":"${demoToken}"}'`,
    ''
  ].join('\n') + '\n')
}
