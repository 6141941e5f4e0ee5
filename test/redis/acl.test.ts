import t from 'tap'
import { aclSetUserLine, requiredCommands, topologyOf, REDIS_COMMANDS } from '../../src/redis/acl.js'

const config = (redisUrl: string | undefined, redisClusterNodes: unknown[] = []) => ({ redisUrl, redisClusterNodes })

t.test('the deployment decides the extra commands', async t => {
  t.same(topologyOf(config('redis://cache:6379')), { cluster: false, database: 0 })
  t.same(topologyOf(config('redis://cache:6379/3')), { cluster: false, database: 3 }, 'the path names the database, as ioredis reads it')
  t.same(topologyOf(config('redis://cache:6379?db=2')), { cluster: false, database: 2 })
  t.same(topologyOf(config(undefined, [{ host: 'a', port: 1 }])), { cluster: true, database: 0 })
  t.same(requiredCommands().map(c => c.name), REDIS_COMMANDS.map(c => c.name))
  t.same(requiredCommands({ cluster: false, database: 3 }).map(c => c.name).slice(REDIS_COMMANDS.length), ['select'])
  t.same(requiredCommands({ cluster: false, database: 3 }).at(-1)!.probe('k'), ['SELECT', '3'], 'the doctor selects the database it is already in')
  t.same(requiredCommands({ cluster: true, database: 0 }).map(c => c.name).slice(REDIS_COMMANDS.length), ['cluster|slots', 'cluster|info', 'client|setname', 'readonly'])
})

t.test('the line: one +command each, the key pattern escaped for Redis\' glob', async t => {
  t.match(aclSetUserLine('session:', { topology: { cluster: false, database: 1 } }), / \+pexpire \+select$/)
  t.match(aclSetUserLine('odd*[prefix]?:'), / ~odd\\\*\\\[prefix\\\]\\\?:\* /)
  t.equal(new Set(REDIS_COMMANDS.map(c => c.name)).size, REDIS_COMMANDS.length, 'no command twice')
})
