// The alerts as Prometheus evaluates them during the run: every alert seen
// pending or firing, polled from /api/v1/alerts, kept as spans of time; then
// judged per fault against expectations.ts.
import type { Prometheus } from '../test/helpers/prometheus.ts'
import type { Expected } from './expectations.ts'

export interface AlertSpan {
  alert: string
  /** the alert's own labels that tell its series apart (instance, job) */
  where: string
  pendingAt: number
  firingAt: number | undefined
  /** last seen active; undefined while it still is */
  endedAt: number | undefined
}

export interface AlertWatch {
  spans: AlertSpan[]
  stop(): Promise<void>
}

const LABELS = ['instance', 'job'] as const

export function watchAlerts (prometheus: Prometheus, everyMs: number, now: () => number, log: (line: string) => void): AlertWatch {
  const spans: AlertSpan[] = []
  const open = new Map<string, AlertSpan>()
  const state = { running: true }
  let failedPolls = 0

  async function poll (): Promise<void> {
    const at = now()
    const active = await prometheus.alerts()
    const seen = new Set<string>()
    for (const a of active) {
      const alert = a.labels.alertname ?? '?'
      const where = LABELS.map(l => a.labels[l]).filter(v => v !== undefined).join(' ')
      const key = `${alert} ${where}`
      seen.add(key)
      let span = open.get(key)
      if (span === undefined) {
        span = { alert, where, pendingAt: at, firingAt: undefined, endedAt: undefined }
        open.set(key, span)
        spans.push(span)
      }
      if (a.state === 'firing' && span.firingAt === undefined) span.firingAt = at
    }
    for (const [key, span] of open) {
      if (seen.has(key)) continue
      span.endedAt = at
      open.delete(key)
    }
  }

  const loop = (async () => {
    while (state.running) {
      await poll().catch(err => { if (failedPolls++ < 3) log(`prometheus alerts poll failed: ${(err as Error).message}`) })
      await new Promise(resolve => setTimeout(resolve, everyMs))
    }
  })()

  return {
    spans,
    async stop () {
      state.running = false
      await loop
    }
  }
}

export interface AlertVerdict {
  /** the alerts active in the fault's window, one entry per alert, as the table shows them */
  seen: string[]
  failures: string[]
}

const s = (ms: number) => `${Math.round(ms / 1000)} s`

// Expected alerts must fire between the fault's start and their deadline.
// An alert that went pending during the fault or its recovery and is still
// firing at the clear deadline after the fault's end has not stopped in time
// (one active since before the fault was judged with the fault it came with).
export function judgeAlerts (spans: AlertSpan[], window: { start: number, end: number, next: number }, expected: Array<Expected & { deadlineMs: number }>, clearMs: (alert: string) => number): AlertVerdict {
  const own = spans.filter(sp => sp.pendingAt >= window.start && sp.pendingAt < window.next)
  const carried = spans.filter(sp => sp.pendingAt < window.start && (sp.endedAt === undefined || sp.endedAt >= window.start))
  const byAlert = new Map<string, AlertSpan[]>()
  for (const sp of own) byAlert.set(sp.alert, [...byAlert.get(sp.alert) ?? [], sp])
  const short = (alert: string) => alert.replace(/^SessionValidator/, '')
  const seen = [...byAlert].map(([alert, list]) => {
    const fired = list.map(sp => sp.firingAt).filter(t => t !== undefined)
    const name = `${short(alert)}${list.length > 1 ? ` ×${list.length}` : ''}`
    if (fired.length === 0) return `${name}: pending only`
    const ends = list.map(sp => sp.endedAt)
    const last = ends.includes(undefined) ? undefined : Math.max(...ends as number[])
    const ended = last === undefined ? ', still active' : last <= window.end ? ', over before the end' : `, over +${s(last - window.end)} after the end`
    return `${name}: fired +${s(Math.min(...fired) - window.start)}${ended}`
  })
  for (const alert of new Set(carried.map(sp => sp.alert))) seen.push(`${short(alert)}: active since before`)
  const failures: string[] = []
  for (const e of expected) {
    const fired = [...own, ...carried].some(sp => sp.alert === e.alert && sp.firingAt !== undefined && sp.firingAt <= window.start + e.deadlineMs)
    if (!fired) failures.push(`${e.alert} did not fire within ${s(e.deadlineMs)} (documented: ${e.within})`)
  }
  for (const sp of own) {
    const check = window.end + clearMs(sp.alert)
    if (sp.firingAt !== undefined && sp.firingAt <= check && (sp.endedAt === undefined || sp.endedAt > check)) {
      failures.push(`${sp.alert}${sp.where === '' ? '' : ` (${sp.where})`} still firing ${s(clearMs(sp.alert))} after the fault ended`)
    }
  }
  return { seen, failures }
}
