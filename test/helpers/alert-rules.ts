import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

// The shipped alert rules (deploy/prometheus/alerts.yml), and the same rules
// with time shortened for runs that cannot wait minutes: every range window,
// offset, `for:` and `keep_firing_for:` divided, the expressions' logic
// untouched. The alert test and the soak both use it (the soak under plain Node).
export interface Rule { alert: string, expr: string, for?: string, keep_firing_for?: string, [key: string]: unknown }
export interface Rules { groups: Array<{ name: string, rules: Rule[], [key: string]: unknown }> }

export const RULES_FILE = new URL('../../deploy/prometheus/alerts.yml', import.meta.url)

export function loadRules (): Rules {
  return parse(readFileSync(RULES_FILE, 'utf8')) as Rules
}

export const alertNames = (rules: Rules) => rules.groups.flatMap(g => g.rules.map(r => r.alert))

const UNIT: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }

/** A Prometheus duration (`90s`, `2m`, `1m30s`) in seconds. */
export function seconds (duration: string): number {
  const parts = [...duration.matchAll(/(\d+)(ms|[smhdw])/g)]
  if (parts.length === 0 || parts.map(p => p[0]).join('') !== duration) throw new Error(`not a Prometheus duration: ${duration}`)
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNIT[p[2]!]!, 0)
}

/** Seconds as a Prometheus duration, which takes no fractions: whole seconds, else milliseconds. */
export function duration (s: number): string {
  const ms = Math.max(1, Math.round(s * 1000))
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

export interface Shortening {
  /** Range windows, subquery steps and offsets are divided by this… */
  windowsBy: number
  /** …but no window is shorter than this (seconds): a rate needs a few scrapes. */
  minWindowSeconds: number
  /** `for:` and `keep_firing_for:` are divided by this. */
  forBy: number
}

export function shortenRules (rules: Rules, how: Shortening): Rules {
  const window = (d: string) => duration(Math.max(how.minWindowSeconds, seconds(d) / how.windowsBy))
  const hold = (d: string) => duration(seconds(d) / how.forBy)
  return {
    ...rules,
    groups: rules.groups.map(g => ({
      ...g,
      rules: g.rules.map(r => ({
        ...r,
        expr: r.expr
          .replace(/\[(\w+)(?::(\w*))?\]/g, (_, range: string, step: string | undefined) =>
            `[${window(range)}${step === undefined ? '' : `:${step === '' ? '' : window(step)}`}]`)
          .replace(/\boffset\s+(\w+)/g, (_, d: string) => `offset ${duration(seconds(d) / how.windowsBy)}`),
        ...(r.for !== undefined ? { for: hold(r.for) } : {}),
        ...(r.keep_firing_for !== undefined ? { keep_firing_for: hold(r.keep_firing_for) } : {})
      }))
    }))
  }
}
