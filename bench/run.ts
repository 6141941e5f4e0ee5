// npm run bench: seeds a database of its own, starts the service and two
// reference servers, runs the scenarios in turns and writes bench/results/.
import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanupOnSignals, runCleanup } from './cleanup.ts'
import { summarizeProfile, type ProfileSummary } from './cpu-profile.ts'
import { createBenchDatabase } from './database.ts'
import { snapshotBuild } from './dist.ts'
import { buildIdentity, describeRun } from './meta.ts'
import { parseOptions, type Options } from './options.ts'
import { startRedis } from './redis-server.ts'
import { writeReport } from './report.ts'
import { atFixedRate } from './scenarios/fixed-rate.ts'
import { mixed } from './scenarios/mixed.ts'
import { forwardAuthThroughNginx } from './scenarios/forward-auth.ts'
import { startNginxFront } from './nginx-front.ts'
import { soak } from './scenarios/soak.ts'
import { throughput } from './scenarios/throughput.ts'
import { warmHitSet } from './scenarios/warm-hit.ts'
import { seedSessions } from './seed.ts'
import { startServers } from './servers.ts'
import type { Round } from './summary.ts'

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url))
const log = (line: string) => process.stderr.write(`${line}\n`)
const fmt = (n: number) => Math.round(n).toLocaleString('en')

async function bench (o: Options): Promise<void> {
  const startedAt = new Date()
  const build = buildIdentity()
  snapshotBuild()
  log(`bench: ${fmt(o.sessions)} sessions, ${o.rounds} rounds of ${o.seconds} s runs${o.quick ? ' (quick)' : ''}`)
  const db = await createBenchDatabase(o.adminUrl)
  log(`database ${db.name} created and migrated; seeding`)
  await seedSessions(db.sql, o.sessions, o.sessionsPerUser, log)

  const redis = await startRedis()
  let profileDir: string | undefined
  if (o.profile) {
    profileDir = join(RESULTS, `profiles-${startedAt.toISOString().replace(/[:.]/g, '-')}`)
    mkdirSync(profileDir, { recursive: true })
  }
  const servers = await startServers({ databaseUrl: db.url, redisUrl: redis.url, profileDir, rateLimit: o.rateLimit })
  log(`servers up: ${servers.all.map(s => `${s.name} ${s.base}`).join(', ')}`)

  const front = await startNginxFront(Number(new URL(servers.hit.base).port))
  log(typeof front === 'string' ? `forward auth through nginx: skipped, ${front}` : `nginx up: direct ${front.direct}, forward auth ${front.forwardAuth}`)

  log(`warming the hit set: ${fmt(o.hitSet)} sessions`)
  const memory = await warmHitSet(servers.hit, redis, o.hitSet, o.connections)
  log(`  ${fmt(memory.bytesPerSession)} bytes of Redis per cached session`)

  const shape = { seconds: o.seconds, warmupSeconds: o.warmupSeconds, connections: o.connections, threads: o.threads }
  const rate = { rate: o.fixedRate, seconds: o.fixedRateSeconds, warmupSeconds: o.warmupSeconds, connections: o.connections }
  const all = { mode: 'uniform', lo: 1, hi: o.sessions } as const
  const helpers = { redisPid: redis.pid, postgresPids: db.backendPids }
  const mixedShape = {
    sessions: o.sessions,
    exponent: o.zipfExponent,
    windows: o.mixedWindows,
    windowSeconds: o.mixedWindowSeconds,
    connections: o.connections,
    threads: o.threads,
    redisDb: 1
  }
  const rounds: Round[] = []
  for (let i = 1; i <= o.rounds; i++) {
    log(`round ${i} of ${o.rounds}`)
    const ceiling = await throughput('ceiling', servers.ceiling, all, shape, helpers)
    log(`  ceiling  ${fmt(ceiling.rps)} req/s, p99 ${ceiling.p99.toFixed(2)} ms`)
    const hit = await throughput('hit', servers.hit, { mode: 'uniform', lo: 1, hi: o.hitSet }, shape, helpers)
    log(`  hit      ${fmt(hit.rps)} req/s, p99 ${hit.p99.toFixed(2)} ms`)
    const miss = await throughput('miss', servers.miss, all, shape, helpers)
    log(`  miss     ${fmt(miss.rps)} req/s, p99 ${miss.p99.toFixed(2)} ms`)
    const naive = await throughput('naive', servers.naive, all, shape, helpers)
    log(`  naive    ${fmt(naive.rps)} req/s, p99 ${naive.p99.toFixed(2)} ms`)
    const mix = await mixed(servers.mixed, redis, mixedShape)
    log(`  mixed    ${fmt(mix.steady.rps)} req/s, hit ratio ${mix.steady.hitRatio.toFixed(3)}, ${mix.steady.queriesPerValidation.toFixed(4)} queries/validation (floor ${mix.steady.floor.toFixed(4)})`)
    const ceilingAtRate = await atFixedRate(servers.ceiling, o.sessions, rate, helpers)
    log(`  ceiling @${fmt(o.fixedRate)}/s p99 ${ceilingAtRate.p99.toFixed(2)} ms`)
    const hitAtRate = await atFixedRate(servers.hit, o.hitSet, rate, helpers)
    log(`  hit     @${fmt(o.fixedRate)}/s p99 ${hitAtRate.p99.toFixed(2)} ms`)
    let forwardAuth
    if (typeof front !== 'string') {
      forwardAuth = await forwardAuthThroughNginx(front, { mode: 'uniform', lo: 1, hi: o.hitSet }, shape)
      log(`  nginx    ${fmt(forwardAuth.direct.rps)} req/s direct, ${fmt(forwardAuth.through.rps)} req/s with forward auth (${(forwardAuth.through.rps / forwardAuth.direct.rps).toFixed(3)})`)
    }
    rounds.push({ ceiling, hit, miss, naive, mixed: mix, ceilingAtRate, hitAtRate, ...(forwardAuth === undefined ? {} : { forwardAuth }) })
  }

  log(`soak: the miss path for ${o.soakSeconds} s`)
  const soaked = await soak(servers.miss, helpers, { sessions: o.sessions, seconds: o.soakSeconds, windowSeconds: o.soakWindowSeconds, connections: o.connections, threads: o.threads })
  log(`  last/first ${soaked.ratio.toFixed(3)}`)

  // stopped gracefully before the report, so that --cpu-prof writes its files
  await Promise.all([...servers.all.map(s => s.child.stop()), ...(typeof front === 'string' ? [] : [front.child.stop()])])
  const profiles: ProfileSummary[] = []
  if (profileDir !== undefined) {
    for (const file of readdirSync(profileDir).filter(f => f.endsWith('.cpuprofile')).sort()) {
      profiles.push(summarizeProfile(file.replace(/\.cpuprofile$/, ''), join(profileDir, file)))
    }
  }
  const meta = describeRun(o, startedAt, db.name, build)
  const markdown = writeReport(RESULTS, { meta, rounds, soak: soaked, memory, profiles })
  process.stdout.write(markdown)
}

const options = parseOptions(process.argv.slice(2))
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
