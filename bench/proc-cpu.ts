import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

// CPU time a process has used, from /proc (Linux). On a shared machine CPU
// per request moves far less with other people's load than requests/s does.
let ticksPerSecond: number | undefined

function clockTicks (): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

export function cpuSeconds (pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // fields after the command name, which may hold spaces: state is field 3
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / clockTicks() // utime + stime
  } catch {
    return Number.NaN
  }
}

export interface CpuMeter {
  /** microseconds of CPU per request since the meter started, by group */
  perRequest(requests: number): Record<string, number>
}

// Each group is a set of processes (Postgres: one per connection) whose CPU
// is summed. Only processes alive at both ends count: an idle pool connection
// may close meanwhile, and one that opens meanwhile is not seen.
export function startCpuMeter (groups: Record<string, Array<number | undefined>>): CpuMeter {
  const start = Object.entries(groups).map(([name, pids]) => ({ name, pids, at: pids.map(cpuSeconds) }))
  return {
    perRequest (requests) {
      return Object.fromEntries(start.map(({ name, pids, at }) => {
        let used = 0
        let alive = 0
        pids.forEach((pid, i) => {
          const delta = cpuSeconds(pid) - at[i]!
          if (Number.isFinite(delta)) { used += delta; alive++ }
        })
        return [name, alive === 0 ? Number.NaN : (used * 1e6) / Math.max(1, requests)]
      }))
    }
  }
}
