// The OpenAPI 3.1 document (GET /docs/json), built from the route schemas.
import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import swagger, { type SwaggerTransformObject } from '@fastify/swagger'
import fp from 'fastify-plugin'
import { apiKeyGuard } from './api-keys.js'

// ../package.json from both src/ and dist/; the image ships it for npm ci anyway
const { version } = createRequire(import.meta.url)('../package.json') as { version: string }

interface Operation { requestBody?: { required?: boolean, content?: Record<string, { schema?: { type?: unknown } }> }, security?: unknown }
interface Document { paths?: Record<string, Record<string, Operation>> }

export interface OpenapiOptions {
  serviceApiKeys: readonly string[]
  metricsToken: string | undefined
}

// Registered before the routes and not encapsulated, so swagger's onRoute hook
// sees every route, including those in sibling plugins. 3.1 because its schema
// objects are JSON Schema: the route schemas go in unconverted. Each route
// declares its own security: the API-key guard marks the routes it guards
// (src/api-keys.ts), /metrics its bearer token; any other route is public.
async function openapi (fastify: FastifyInstance, opts: OpenapiOptions): Promise<void> {
  const schemes = {
    ...(opts.serviceApiKeys.length > 0 ? { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'One of SERVICE_API_KEYS' } as const } : {}),
    ...(opts.metricsToken !== undefined ? { metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' } as const } : {})
  }
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'session-validator',
        description: 'Is this session token valid, and whose is it? Postgres is the truth, Redis a cache in front of it.',
        version,
        // a private package: no licence is granted (SPDX's form for a licence
        // of one's own)
        license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' }
      },
      // relative: the instance that serves this document
      servers: [{ url: '/', description: 'this instance' }],
      ...(Object.keys(schemes).length > 0 ? { components: { securitySchemes: schemes } } : {})
    },
    transformObject: (documents) => {
      const document = ('openapiObject' in documents ? documents.openapiObject : documents.swaggerObject) as Document
      for (const path of Object.values(document.paths ?? {})) {
        for (const operation of Object.values(path)) operation.security ??= []
      }
      // A Bearer-only validation sends no body at all; swagger assumes one.
      // (The route's schema admits null for that case; a body sent is an object.)
      const body = document.paths?.['/sessions/validate']?.post?.requestBody
      if (body !== undefined) {
        body.required = false
        const schema = body.content?.['application/json']?.schema
        if (schema !== undefined) schema.type = 'object'
      }
      return document as ReturnType<SwaggerTransformObject>
    }
  })

  // The document is not a health or metrics route, so SERVICE_API_KEYS covers it.
  await fastify.register(async function docs (scope) {
    apiKeyGuard(scope, opts.serviceApiKeys)
    scope.get('/docs/json', { logLevel: 'warn', schema: { hide: true } }, async () => fastify.swagger())
  })
}

export default fp(openapi, { name: 'session-validator-openapi', fastify: '5.x' })
