// The OpenAPI document of a running service turned into client/src/openapi.ts:
// openapi-typescript's output in the repository's lint style (ESLint --fix),
// so that the committed file and a fresh one compare byte for byte.
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const TYPES_FILE = fileURLToPath(new URL('../src/openapi.ts', import.meta.url))

const HEADER = '// Generated from the service\'s GET /docs/json by `npm run generate --workspace client`; do not edit.\n'

export async function fetchDocument (baseUrl: string, apiKey?: string): Promise<OpenAPI3> {
  const res = await fetch(new URL('/docs/json', baseUrl), { headers: apiKey === undefined ? {} : { 'x-api-key': apiKey } })
  if (!res.ok) throw new Error(`GET /docs/json answered ${res.status}`)
  return await res.json() as OpenAPI3
}

export async function typesFrom (document: OpenAPI3): Promise<string> {
  const code = HEADER + astToString(await openapiTS(document, { silent: true }))
  const [result] = await new ESLint({ cwd: ROOT, fix: true }).lintText(code, { filePath: TYPES_FILE })
  if (result === undefined || result.errorCount > 0) {
    throw new Error(`the generated types still break the lint rules: ${result?.messages.map(m => m.message).join('; ')}`)
  }
  return result.output ?? code
}
