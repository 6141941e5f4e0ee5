export { freePort } from '../../src/free-port.ts'

export const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export async function waitFor (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 25): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check()) return
    await sleep(everyMs)
  }
  throw new Error(`timed out waiting for ${what}`)
}
