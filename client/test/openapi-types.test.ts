import { readFileSync } from 'node:fs'
import t from 'tap'
import { fetchDocument, TYPES_FILE, typesFrom } from '../scripts/openapi-types.js'
import { startService } from './helpers/service.js'

// The committed types are the running service's document: a route schema
// changed in src/routes/schemas.ts without `npm run generate --workspace client`
// fails here, and client/test/openapi-types.assert.ts then says, at compile
// time, whether the client's own types still match.
t.test('client/src/openapi.ts is what the running service\'s GET /docs/json generates', async t => {
  const service = await startService(t)
  const fresh = await typesFrom(await fetchDocument(service.url))
  t.equal(readFileSync(TYPES_FILE, 'utf8'), fresh, 'out of date: `npm run build && npm run generate --workspace client`')
})
