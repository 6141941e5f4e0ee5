// http_request_duration_seconds{method,route,status_code}, as fastify-metrics
// recorded it (registered routes, HEAD/OPTIONS/TRACE/CONNECT left out), from
// one onResponse hook per route with its label children bound once: no timer
// closure, no label object and no route lookup per request.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onResponseHookHandler } from 'fastify'
import type { HotHistogram } from './hot-metrics.js'

const LEFT_OUT = new Set(['HEAD', 'OPTIONS', 'TRACE', 'CONNECT'])

export function routeMetrics (fastify: FastifyInstance, histogram: HotHistogram): void {
  fastify.addHook('onRoute', route => {
    const methods = [route.method].flat().filter(m => !LEFT_OUT.has(m))
    if (methods.length === 0) return
    const url = route.url
    // each method's children by status, bound on first use
    const children = new Map(methods.map(m => [m, new Map<number, { observe(value: number): void }>()]))
    const record = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      const byStatus = children.get(request.method)
      if (byStatus !== undefined) {
        const status = reply.statusCode
        let child = byStatus.get(status)
        if (child === undefined) byStatus.set(status, child = histogram.labels(request.method, url, String(status)))
        child.observe(reply.elapsedTime / 1000)
      }
      done()
    }
    const hooks = route.onResponse
    route.onResponse = hooks === undefined ? [record] : [...[hooks].flat() as onResponseHookHandler[], record]
  })
}
