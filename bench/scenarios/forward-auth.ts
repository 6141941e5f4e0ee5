import type { NginxFront } from '../nginx-front.ts'
import { assertHealthy, runWrk, type TokenChoice, type WrkResult } from '../wrk.ts'
import type { LoadShape } from './throughput.ts'

export interface ForwardAuthRound {
  /** nginx → app */
  direct: WrkResult
  /** nginx → GET /forward-auth (a cache hit) → app */
  through: WrkResult
}

// The same GET with the same cookie to both; only the auth_request differs.
export async function forwardAuthThroughNginx (front: NginxFront, tokens: TokenChoice, shape: LoadShape): Promise<ForwardAuthRound> {
  const run = async (url: string) => {
    const base = { url, tokens, connections: shape.connections, threads: shape.threads, cookie: true }
    await runWrk({ ...base, seconds: shape.warmupSeconds })
    const result = await runWrk({ ...base, seconds: shape.seconds })
    assertHealthy(url, result)
    return result
  }
  const direct = await run(front.direct)
  const through = await run(front.forwardAuth)
  return { direct, through }
}
