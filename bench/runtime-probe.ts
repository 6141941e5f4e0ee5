// Bench-only preload (`node --import bench/runtime-probe.ts`): what a server's
// runtime did during a run — bytes allocated on the JS heap, each GC pause,
// the event-loop delay — served as JSON on its own loopback port
// (BENCH_PROBE_PORT). Nothing of it is in the service's code or image.
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { Session } from 'node:inspector/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapStatistics, GCProfiler } from 'node:v8'

export interface ProbeReading {
  /** JS-heap bytes allocated since the last reset */
  allocatedBytes: number
  /** each GC's pause since the last reset, microseconds, by kind */
  pausesUs: number[]
  scavenges: number
  markCompacts: number
  /** bytes that survived scavenges into the old generation */
  promotedBytes: number
  /** event-loop delay since the last reset, ms (1 ms resolution) */
  loopP50Ms: number
  loopP99Ms: number
  loopMaxMs: number
  heapUsedBytes: number
}

interface GcStat {
  gcType: string
  cost: number
  beforeGC: { heapStatistics: { usedHeapSize: number }, heapSpaceStatistics: Array<{ spaceName: string, spaceUsedSize: number }> }
  afterGC: { heapStatistics: { usedHeapSize: number }, heapSpaceStatistics: Array<{ spaceName: string, spaceUsedSize: number }> }
}

const port = Number(process.env.BENCH_PROBE_PORT)
if (Number.isInteger(port) && port > 0) {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  let profiler = new GCProfiler()
  profiler.start()
  let allocated = 0
  let lastAfter = getHeapStatistics().used_heap_size
  let pauses: number[] = []
  let scavenges = 0
  let markCompacts = 0
  let promoted = 0
  const oldSpace = (s: GcStat['beforeGC']) => s.heapSpaceStatistics.find(x => x.spaceName === 'old_space')?.spaceUsedSize ?? 0

  // GCProfiler hands its records over only when stopped: take them, start anew.
  function drain (): void {
    const stats = (profiler.stop()?.statistics ?? []) as GcStat[]
    profiler = new GCProfiler()
    profiler.start()
    for (const s of stats) {
      allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - lastAfter)
      lastAfter = s.afterGC.heapStatistics.usedHeapSize
      pauses.push(s.cost)
      if (s.gcType === 'Scavenge' || s.gcType === 'MinorMarkSweep') {
        scavenges++
        promoted += Math.max(0, oldSpace(s.afterGC) - oldSpace(s.beforeGC))
      } else if (s.gcType === 'MarkSweepCompact') {
        markCompacts++
      }
    }
  }

  function read (reset: boolean): ProbeReading {
    drain()
    const used = getHeapStatistics().used_heap_size
    const reading: ProbeReading = {
      allocatedBytes: allocated + Math.max(0, used - lastAfter),
      pausesUs: pauses,
      scavenges,
      markCompacts,
      promotedBytes: promoted,
      loopP50Ms: delay.percentile(50) / 1e6,
      loopP99Ms: delay.percentile(99) / 1e6,
      loopMaxMs: delay.max / 1e6,
      heapUsedBytes: used
    }
    if (reset) {
      allocated = 0
      lastAfter = used
      pauses = []
      scavenges = markCompacts = promoted = 0
      delay.reset()
    }
    return reading
  }

  // --profile: a CPU profile and a sampled allocation profile of exactly the
  // measured run, written where the bench says (/profile/stop?to=<path without extension>)
  const session = new Session()
  session.connect()
  async function startProfiles (): Promise<void> {
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 200 })
    await session.post('Profiler.start')
    await session.post('HeapProfiler.enable')
    // every allocation sampled, not only what is still alive at the stop
    await session.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  }
  async function stopProfiles (to: string): Promise<void> {
    const { profile } = await session.post('Profiler.stop')
    const { profile: heap } = await session.post('HeapProfiler.stopSampling')
    writeFileSync(`${to}.cpuprofile`, JSON.stringify(profile))
    writeFileSync(`${to}.heapprofile`, JSON.stringify(heap))
  }

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://probe')
    const answer = (work: Promise<unknown>) => work.then(body => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}))
    }, (err: Error) => { response.writeHead(500).end(err.message) })
    if (url.pathname === '/profile/start') answer(startProfiles())
    else if (url.pathname === '/profile/stop') answer(stopProfiles(url.searchParams.get('to') ?? ''))
    else answer(Promise.resolve(read(url.pathname === '/reset')))
  })
  server.listen(port, '127.0.0.1')
  // never what keeps a server from exiting on SIGTERM
  server.unref()
}
