// npm run bench: seeds a database of its own, starts the service and the
// reference servers, runs the scenarios in turns and writes bench/results/.
import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanupOnSignals, runCleanup } from './cleanup.ts'
import { summarizeProfile, type ProfileSummary } from './cpu-profile.ts'
import { createBenchDatabase } from './database.ts'
import { snapshotBuild } from './dist.ts'
import { writeExpressCookies } from './express-cookies.ts'
import { buildIdentity, describeRun } from './meta.ts'
import { parseOptions, type Options, type Scenario } from './options.ts'
import type { MemoryBreakdown } from './redis-memory.ts'
import { measureL1Memory } from './l1-memory-run.ts'
import type { L1Memory } from './l1-memory.ts'
import { startRedis } from './redis-server.ts'
import { writeReport } from './report.ts'
import type { Runtime } from './runtime.ts'
import { scrape, total } from './scrape.ts'
import { deploy as deployScenario, type DeployResult } from './scenarios/deploy.ts'
import { atFixedRate } from './scenarios/fixed-rate.ts'
import { mixed } from './scenarios/mixed.ts'
import { forwardAuthThroughNginx } from './scenarios/forward-auth.ts'
import { revokeLatency, type RevokeResult } from './scenarios/revoke.ts'
import { startNginxFront } from './nginx-front.ts'
import { soak, type SoakResult } from './scenarios/soak.ts'
import { throughput, type Throughput } from './scenarios/throughput.ts'
import { warmHitSet, warmLocal } from './scenarios/warm-hit.ts'
import { seedSessions } from './seed.ts'
import { fleetDefaultsEnv, l1HitEnv, REDIS_DB, startServers, startService, type Server, type ServerPlan } from './servers.ts'
import type { Round } from './summary.ts'
import { tokenRanges, type Range } from './tokens.ts'

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url))
// the revoke scenario's fleet: processes on one database and Redis
const REVOKE_INSTANCES = 3
const log = (line: string) => process.stderr.write(`${line}\n`)
const fmt = (n: number) => Math.round(n).toLocaleString('en')
const pct = (v: number | undefined) => v === undefined ? '' : `, ${(v * 100).toFixed(1)} % from L1`
const runtimeLine = (r: Runtime) => `${fmt(r.bytesPerRequest)} B/req allocated, ${r.gcCount} GC (max ${r.gcMaxMs.toFixed(2)} ms), ` +
  `event-loop delay p99 ${r.loopP99Ms.toFixed(2)} ms, max ${r.loopMaxMs.toFixed(2)} ms`

async function bench (o: Options): Promise<void> {
  const startedAt = new Date()
  const build = o.build === undefined ? buildIdentity() : `the dist/ built in ${o.build}`
  const has = (...names: Scenario[]) => names.some(n => o.only.has(n))
  snapshotBuild(o.build)
  log(`bench: ${fmt(o.sessions)} sessions, ${o.rounds} rounds of ${o.seconds} s runs${o.quick ? ' (quick)' : ''}${o.partial ? `, only ${[...o.only].join(', ')}` : ''}`)
  const ranges = tokenRanges(o.sessions, o.hitSet, o.revokes)
  const db = await createBenchDatabase(o.adminUrl)
  log(`database ${db.name} created and migrated; seeding`)
  await seedSessions(db.sql, ranges.all, o.sessionsPerUser, 'standard', log)
  if (has('lifecycle')) await seedSessions(db.sql, ranges.lifecycle, o.sessionsPerUser, 'sliding', log)
  if (has('revoke')) await seedSessions(db.sql, ranges.revoke, o.sessionsPerUser, 'standard', log)

  const redis = await startRedis()
  let profileDir: string | undefined
  if (o.profile) {
    profileDir = join(RESULTS, `profiles-${startedAt.toISOString().replace(/[:.]/g, '-')}`)
    mkdirSync(profileDir, { recursive: true })
  }
  const cookies = writeExpressCookies(o.hitSet)
  const plan: ServerPlan = {
    databaseUrl: db.url,
    redisUrl: redis.url,
    nodeFlags: o.nodeFlags,
    requestLimit: o.requestLimit,
    hitSet: o.hitSet,
    sessionsPerUser: o.sessionsPerUser,
    expressSecret: cookies.secret
  }
  const servers = await startServers(plan)
  log(`servers up: ${servers.all.map(s => `${s.name} ${s.base}`).join(', ')}`)

  const front = has('forward-auth') ? await startNginxFront(Number(new URL(servers.local.base).port)) : 'left out'
  log(typeof front === 'string' ? `forward auth through nginx: skipped, ${front}` : `nginx up: direct ${front.direct}, forward auth ${front.forwardAuth}`)

  let l1Memory: L1Memory | undefined
  if (has('local')) {
    l1Memory = await measureL1Memory().catch((err: Error) => {
      log(`memory tier: not measured (${err.message.split('\n')[0]})`)
      return undefined
    })
    if (l1Memory !== undefined) log(`memory tier: ${fmt(l1Memory.sessions)} sessions take ${(l1Memory.measuredBytesPerSession * l1Memory.sessions / 2 ** 20).toFixed(1)} MiB (${fmt(l1Memory.measuredBytesPerSession)} bytes each)`)
  }

  let memory: MemoryBreakdown | undefined
  if (has('hit', 'local', 'rate', 'forward-auth', 'deploy')) {
    // first: it flushes the fleet's Redis database
    log(`warming the hit set: ${fmt(o.hitSet)} sessions`)
    memory = await warmHitSet(servers.hit, redis, o.hitSet, o.connections)
    log(`  ${fmt(memory.bytesPerSession)} bytes of Redis per cached session`)
  }
  const inMemory = async (server: Server, range: Range) => {
    const warmth = await warmLocal(server, range, o.connections)
    log(`  ${server.name}: ${fmt(warmth.entries)} sessions in memory, ~${fmt(warmth.bytes / Math.max(1, warmth.entries))} bytes each, ${fmt(warmth.evictions)} evictions`)
  }
  if (has('local', 'rate', 'forward-auth', 'deploy')) await inMemory(servers.local, ranges.hit)
  if (has('lifecycle')) await inMemory(servers.lifecycle, ranges.lifecycle)

  const shape = { seconds: o.seconds, warmupSeconds: o.warmupSeconds, connections: o.connections, threads: o.threads }
  const rate = { rate: o.fixedRate, seconds: o.fixedRateSeconds, warmupSeconds: o.warmupSeconds, connections: o.connections }
  const uniform = (r: Range) => ({ mode: 'uniform', ...r }) as const
  const helpers = { redisPid: redis.pid, postgresPids: db.backendPids, profileDir }
  const mixedShape = {
    sessions: o.sessions,
    exponent: o.zipfExponent,
    windows: o.mixedWindows,
    windowSeconds: o.mixedWindowSeconds,
    connections: o.connections,
    threads: o.threads,
    redisDb: REDIS_DB.mixed
  }
  const closed = async (label: string, server: Server, range: Range, cookieFile?: string): Promise<Throughput> => {
    const t = await throughput(label, server, uniform(range), shape, helpers, cookieFile === undefined ? {} : { cookieFile })
    log(`  ${label.padEnd(10)} ${fmt(t.rps)} req/s, p99 ${t.p99.toFixed(2)} ms${pct(t.work?.localShare)}; ${runtimeLine(t.runtime)}`)
    return t
  }
  // any epoch move voids the whole fleet's cache, the hit set included: none is expected
  const epochChanges = async () => total(await scrape(servers.local.base), 'session_cache_invalidations_total', { reason: 'epoch' })
  const epochChangesBefore = await epochChanges()
  const rounds: Round[] = []
  const rotated = has('hit', 'local', 'lifecycle', 'miss', 'naive', 'express', 'mixed', 'rate', 'forward-auth')
  for (let i = 1; i <= (rotated ? o.rounds : 0); i++) {
    log(`round ${i} of ${o.rounds}`)
    const round: Round = {}
    if (has('hit', 'local', 'lifecycle', 'miss', 'naive', 'express', 'mixed')) round.ceiling = await closed('ceiling', servers.ceiling, ranges.all)
    if (has('local')) round.local = await closed('L1 hit', servers.local, ranges.hit)
    if (has('lifecycle')) round.lifecycle = await closed('lifecycle', servers.lifecycle, ranges.lifecycle)
    if (has('hit')) round.hit = await closed('L2 hit', servers.hit, ranges.hit)
    if (has('express')) round.express = await closed('express', servers.express, ranges.hit, cookies.file)
    if (has('miss')) round.miss = await closed('miss', servers.miss, ranges.all)
    if (has('naive')) round.naive = await closed('naive', servers.naive, ranges.all)
    if (has('mixed')) {
      round.mixed = await mixed(servers.mixed, redis, mixedShape)
      const s = round.mixed.steady
      log(`  mixed      ${fmt(s.rps)} req/s, hit ratio ${s.hitRatio.toFixed(3)}, ${s.queriesPerValidation.toFixed(4)} queries/validation (floor ${s.floor.toFixed(4)}), restart moved the epoch ${round.mixed.epochMoves} times`)
    }
    if (has('rate')) {
      for (const [key, label, server] of [['ceilingAtRate', 'ceiling', servers.ceiling], ['localAtRate', 'L1 hit', servers.local], ['hitAtRate', 'L2 hit', servers.hit]] as const) {
        const r = await atFixedRate(server, ranges.hit.lo, ranges.hit.hi, rate, helpers)
        round[key] = r
        log(`  ${label.padEnd(7)} @${fmt(o.fixedRate)}/s p99 ${r.p99.toFixed(2)} ms${pct(r.work?.localShare)}; ${runtimeLine(r.runtime)}`)
      }
    }
    if (typeof front !== 'string') {
      round.forwardAuth = await forwardAuthThroughNginx(front, uniform(ranges.hit), shape)
      const f = round.forwardAuth
      log(`  nginx      ${fmt(f.direct.rps)} req/s direct, ${fmt(f.through.rps)} req/s with forward auth (${(f.through.rps / f.direct.rps).toFixed(3)})`)
    }
    rounds.push(round)
  }

  const epochChangesInRounds = (await epochChanges()) - epochChangesBefore
  if (epochChangesInRounds > 0) log(`  the cache epoch moved ${epochChangesInRounds} times during the rounds: every cache was voided, hit figures after it include refills`)

  let soaked: SoakResult | undefined
  if (has('soak')) {
    log(`soak: the miss path for ${o.soakSeconds} s`)
    soaked = await soak(servers.miss, helpers, { sessions: o.sessions, seconds: o.soakSeconds, windowSeconds: o.soakWindowSeconds, connections: o.connections, threads: o.threads })
    log(`  last/first ${soaked.ratio.toFixed(3)}`)
  }

  let deployed: DeployResult | undefined
  if (has('deploy')) {
    log(`deploy: ${o.deploySeconds} s of hit traffic, a peer restarting every ${o.restartEverySeconds} s`)
    const peer = await startService('service-deploy', l1HitEnv(plan), plan)
    deployed = await deployScenario(servers.hit, peer, servers.local, ranges.hit, { seconds: o.deploySeconds, restartEverySeconds: o.restartEverySeconds, connections: o.connections, threads: o.threads })
    await peer.child.stop()
    log(`  hit ratio: stable ${deployed.stable.answers.hitRatio.toFixed(4)}, restarting ${deployed.restarting.answers.hitRatio.toFixed(4)} ` +
      `(first seconds ${deployed.restarting.first.hitRatio.toFixed(4)}); epoch moves ${deployed.stable.epochMoves + deployed.restarting.epochMoves}`)
  }

  let revoked: RevokeResult | undefined
  if (has('revoke')) {
    // only the revoke's own instances hold leases, so each revoke waits for exactly them
    await Promise.all([servers.local, servers.lifecycle, servers.mixed].map(s => s.child.stop()))
    log(`revoke: ${fmt(o.revokes)} revokes through one of ${REVOKE_INSTANCES} instances`)
    const fleet: Server[] = []
    for (let i = 1; i <= REVOKE_INSTANCES; i++) fleet.push(await startService(`service-revoke-${i}`, fleetDefaultsEnv(plan), plan))
    revoked = await revokeLatency(fleet, ranges.revoke)
    await Promise.all(fleet.map(s => s.child.stop()))
    log(`  p50 ${revoked.p50.toFixed(2)} ms, p99 ${revoked.p99.toFixed(2)} ms (fan-out wait ${revoked.fanOutMeanMs.toFixed(2)} ms mean); ` +
      `${revoked.leaseExpired} waited out the lease; ${revoked.validAfter} valid after revoke`)
  }

  await Promise.all([...servers.all.map(s => s.child.stop()), ...(typeof front === 'string' ? [] : [front.child.stop()])])
  const profiles: ProfileSummary[] = []
  if (profileDir !== undefined) {
    for (const file of readdirSync(profileDir).filter(f => f.endsWith('.cpuprofile')).sort()) {
      profiles.push(summarizeProfile(file.replace(/\.cpuprofile$/, ''), join(profileDir, file)))
    }
  }
  const meta = { ...describeRun(o, startedAt, db.name, build), 'epoch moves during the rounds (seen by service-local; 0 expected)': epochChangesInRounds }
  const markdown = writeReport(RESULTS, { meta, rounds, soak: soaked, memory, l1Memory, deploy: deployed, revoke: revoked, profiles })
  process.stdout.write(markdown)
}

let options: Options | undefined
try {
  options = parseOptions(process.argv.slice(2))
} catch (err) {
  log(`bench: ${(err as Error).message} (--help lists the options)`)
  process.exitCode = 2
}
if (options !== undefined) {
  cleanupOnSignals()
  try {
    await bench(options)
  } catch (err) {
    process.exitCode = 1
    log(`bench failed: ${(err as Error).stack ?? String(err)}`)
  } finally {
    await runCleanup()
  }
}
