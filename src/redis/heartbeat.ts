// A PING a second on the cache's connection, whatever the traffic: the signal
// that tells a frozen or wedged Redis (connected, answering nothing) from a
// healthy one, for the alert that must page within the minute.
import { answeredWithin } from './redis-policy.js'
import type { RedisClient } from './redis-client.js'

export const HEARTBEAT_EVERY_MS = 1000

/**
 * Sets `gauge` to 1 when a PING is answered within `timeoutMs`, to 0 when it
 * is not, errs, or cannot be sent (not connected). At most one PING is out at
 * a time: a frozen Redis gets no pile of them. Returns the stop function.
 */
export function startHeartbeat (client: RedisClient, gauge: { set(value: number): void }, timeoutMs: number): () => void {
  let waiting = false
  const beat = () => {
    if (waiting) return
    if (client.status !== 'ready') {
      gauge.set(0)
      return
    }
    waiting = true
    const reply = client.ping()
    answeredWithin(reply, timeoutMs).then(answered => gauge.set(answered ? 1 : 0), () => {})
    reply.then(() => {}, () => {}).finally(() => { waiting = false })
  }
  // at once on a new connection, and 0 as soon as one drops: no second of
  // doubt either way. Until the first beat the gauge is absent, so that an
  // instance starting up is not taken for one whose Redis does not answer.
  client.on('ready', beat)
  const down = () => gauge.set(0)
  client.on('close', down)
  const timer = setInterval(beat, HEARTBEAT_EVERY_MS)
  timer.unref()
  return () => {
    clearInterval(timer)
    client.off('ready', beat)
    client.off('close', down)
  }
}
