// The most any route can do here: Fastify, same version and the very server
// options the service uses (logger, body limit, ...), the same request bytes
// (POST with the same JSON body, parsed), and a constant answer. GET /metrics
// gives its event-loop delay, measured as the service's prom-client does it,
// so that the fixed-rate runs compare both.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Fastify from 'fastify'
import type * as AppModule from '../../src/app.ts'
import type * as ConfigModule from '../../src/config.ts'
import { distHref } from '../dist.ts'

const { serverOptions } = await import(distHref('app.js')) as typeof AppModule
const { loadConfig } = await import(distHref('config.js')) as typeof ConfigModule

const config = loadConfig(process.env)
const app = Fastify(serverOptions(config))
app.post('/sessions/validate', async () => ({ hello: 'world' }))

// prom-client's resolution; reset at every read, as prom-client resets its own
const delay = monitorEventLoopDelay({ resolution: 10 })
delay.enable()
app.get('/metrics', async (_request, reply) => {
  const seconds = (ns: number) => String(ns / 1e9)
  const text = [
    `nodejs_eventloop_lag_mean_seconds ${seconds(delay.mean)}`,
    `nodejs_eventloop_lag_p50_seconds ${seconds(delay.percentile(50))}`,
    `nodejs_eventloop_lag_p99_seconds ${seconds(delay.percentile(99))}`,
    `nodejs_eventloop_lag_max_seconds ${seconds(delay.max)}`,
    ''
  ].join('\n')
  delay.reset()
  return reply.type('text/plain; version=0.0.4').send(text)
})

process.once('SIGTERM', () => { app.close().finally(() => process.exit(0)) })
await app.listen({ port: config.port, host: config.host })
