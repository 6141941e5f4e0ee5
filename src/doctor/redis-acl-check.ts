// Tries every command the service sends (src/redis/acl.ts), for real, on a key
// of the doctor's own under the prefix: Redis checks the ACL before anything
// else, so a NOPERM answer means refused and any other answer means allowed.
import type { Redis } from 'ioredis'
import { aclSetUserLine, requiredCommands, topologyOf } from '../redis/acl.js'
import type { Config } from '../config.js'
import { fail, pass, type Check } from './report.js'
import { within } from './within.js'

async function refused (server: Redis, args: string[], timeoutMs: number): Promise<boolean> {
  try {
    await within(timeoutMs, server.call(args[0]!, ...args.slice(1)))
    return false
  } catch (err) {
    return /^NOPERM/.test((err as Error).message)
  }
}

export async function aclCheck (config: Config, servers: Redis[], key: string): Promise<Check> {
  const topology = topologyOf(config)
  const commands = requiredCommands(topology)
  const timeoutMs = config.redisConnectTimeoutMs
  const denied = new Set<string>()
  const untried = new Set<string>()
  for (const server of servers) {
    // the probe key first: a probe marked needsKey would otherwise create one
    const set = commands.find(c => c.name === 'set')!
    if (await refused(server, set.probe(key), timeoutMs)) denied.add('set')
    // On a Cluster, a node that does not own the key's slot answers MOVED
    // without running anything: safe to try there too.
    const keyExists = !denied.has('set') && await within(timeoutMs, server.exists(key)).then(n => n === 1, (err: Error) => /^MOVED/.test(err.message))
    for (const command of commands) {
      if (command.name === 'set') continue
      if (command.needsKey === true && !keyExists) { untried.add(command.name); continue }
      if (await refused(server, command.probe(key), timeoutMs)) denied.add(command.name)
    }
  }
  const where = servers.length > 1 ? ` on ${servers.length} masters` : ''
  if (denied.size === 0 && untried.size === 0) {
    return pass('redis acl', `all ${commands.length} commands the service sends are permitted on keys under ${config.sessionCachePrefix}${where}`)
  }
  const untriedText = untried.size > 0 ? `; not tried without a key to try them on: ${[...untried].join(', ')}` : ''
  return fail('redis acl', `refused: ${[...denied].join(', ')}${untriedText}${where}. The line that grants what the service needs: ${aclSetUserLine(config.sessionCachePrefix, { topology })}`, { refused: [...denied], untried: [...untried] })
}
