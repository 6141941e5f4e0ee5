import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import swagger, { type SwaggerTransformObject } from '@fastify/swagger'
import fp from 'fastify-plugin'
import { apiKeyGuard } from './api-keys.js'

// ../package.json from both src/ and dist/; the image ships it for npm ci anyway
const { version } = createRequire(import.meta.url)('../package.json') as { version: string }

// The SPEC's exceptions to SERVICE_API_KEYS: health and metrics.
const PUBLIC = /^\/(healthz|readyz|metrics)(\/|$)/

interface Document { paths?: Record<string, Record<string, { requestBody?: { required?: boolean } }>> }

// Registered before the routes and not encapsulated, so swagger's onRoute hook
// sees every route, including those in sibling plugins. 3.1 because its schema
// objects are JSON Schema: the route schemas go in unconverted.
async function openapi (fastify: FastifyInstance, opts: { serviceApiKeys: readonly string[] }): Promise<void> {
  const keyed = opts.serviceApiKeys.length > 0
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'session-validator',
        description: 'Is this session token valid, and whose is it? Postgres is the truth, Redis a cache in front of it.',
        version
      },
      ...(keyed ? { components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' } } } } : {})
    },
    transform: ({ schema, url }) => ({
      schema: keyed && !PUBLIC.test(url) ? { ...schema, security: [{ apiKey: [] }] } : schema,
      url
    }),
    transformObject: (documents) => {
      const document = ('openapiObject' in documents ? documents.openapiObject : documents.swaggerObject) as Document
      // A Bearer-only validation sends no body at all; swagger assumes one.
      const body = document.paths?.['/sessions/validate']?.post?.requestBody
      if (body !== undefined) body.required = false
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
