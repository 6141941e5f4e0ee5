import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { clusterMasters, startCluster } from '../helpers/redis-topologies.js'
import { contractChecks, failoverUnderLoad } from '../helpers/contract.js'

const db = await freshDatabase(t)
const cluster = await startCluster(t)
const env = { REDIS_CLUSTER_NODES: cluster.hosts, REDIS_TIMEOUT_MS: '300', BREAKER_HALF_OPEN_AFTER_MS: '500', BREAKER_WINDOW_MS: '2000' }

t.test('on Redis Cluster (3 masters, 3 replicas)', async t => {
  await contractChecks(t, db, env)
})

t.test('a master killed under load', async t => {
  await failoverUnderLoad(t, db, env, async () => {
    const [master] = await clusterMasters(cluster.nodes)
    await master!.kill()
  })
})
