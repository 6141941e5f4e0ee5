import { existsSync, readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface Share { name: string, percent: number }

export interface ProfileSummary {
  process: string
  /** CPU time sampled while not idle, seconds */
  busySeconds: number
  areas: Share[]
  functions: Share[]
  /** from the sampled allocation profile of the same run, when there is one */
  allocations?: { megabytes: number, functions: Share[] }
}

interface HeapNode {
  callFrame: { functionName: string, url: string, lineNumber: number }
  selfSize: number
  children: HeapNode[]
}

// Where a sample's time belongs: a package, node's own code, the service's
// compiled sources, or V8's own buckets (GC, program).
function areaOf (url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)'
  if (url.startsWith('node:')) return 'node core'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg !== null) return pkg[1]!
  // the service runs from a copy under bench/results/: dist/ names it
  const own = /\/(dist|bench)\/(?!.*\/dist\/)(.+)$/.exec(url)
  if (own !== null) return `${own[1]}/${own[2]}`
  return url
}

function shortUrl (url: string): string {
  return url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|bench)\/(?!.*\/dist\/)/, '$1/')
}

function top (totals: Map<string, number>, busy: number, count: number): Share[] {
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, us]) => ({ name, percent: (100 * us) / busy }))
}

const frameName = (c: { functionName: string, url: string, lineNumber: number }) =>
  c.url === '' ? (c.functionName || '(root)') : `${c.functionName === '' ? '(anonymous)' : c.functionName} ${shortUrl(c.url)}:${c.lineNumber + 1}`

// Bytes allocated by function (self), from a sampled allocation profile.
function summarizeHeap (path: string, count: number): ProfileSummary['allocations'] {
  const { head } = JSON.parse(readFileSync(path, 'utf8')) as { head: HeapNode }
  const bytes = new Map<string, number>()
  let total = 0
  const stack = [head]
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (node.selfSize > 0) {
      const name = frameName(node.callFrame)
      bytes.set(name, (bytes.get(name) ?? 0) + node.selfSize)
      total += node.selfSize
    }
    stack.push(...node.children)
  }
  return { megabytes: total / 2 ** 20, functions: top(bytes, total, count) }
}

// Self time by function and by area, as shares of the non-idle time.
export function summarizeProfile (process: string, path: string, count = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const areas = new Map<string, number>()
  const functions = new Map<string, number>()
  let busy = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)
    const us = profile.timeDeltas[i] ?? 0
    if (node === undefined || node.callFrame.functionName === '(idle)') continue
    busy += us
    const { functionName, url, lineNumber } = node.callFrame
    const area = areaOf(url, functionName)
    areas.set(area, (areas.get(area) ?? 0) + us)
    const fn = url === '' ? functionName : frameName({ functionName, url, lineNumber })
    functions.set(fn, (functions.get(fn) ?? 0) + us)
  }
  const heap = path.replace(/\.cpuprofile$/, '.heapprofile')
  const summary: ProfileSummary = { process, busySeconds: busy / 1e6, areas: top(areas, busy, count), functions: top(functions, busy, count) }
  if (existsSync(heap)) summary.allocations = summarizeHeap(heap, count)
  return summary
}
