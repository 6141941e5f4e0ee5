// The most any route can do here: Fastify, same version and the very server
// options the service uses (logger, body limit, ...), the same request bytes
// (POST with the same JSON body, parsed), and a constant answer.
import Fastify from 'fastify'
import type * as AppModule from '../../src/app.ts'
import type * as ConfigModule from '../../src/config.ts'
import { distHref } from '../dist.ts'

const { serverOptions } = await import(distHref('app.js')) as typeof AppModule
const { loadConfig } = await import(distHref('config.js')) as typeof ConfigModule

const config = loadConfig(process.env)
const app = Fastify(serverOptions(config))
app.post('/sessions/validate', async () => ({ hello: 'world' }))

process.once('SIGTERM', () => { app.close().finally(() => process.exit(0)) })
await app.listen({ port: config.port, host: config.host })
