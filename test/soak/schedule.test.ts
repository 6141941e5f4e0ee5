import t from 'tap'
import { alertNames, loadRules, seconds, shortenRules, type Rules } from '../helpers/alert-rules.ts'
import { CLEARS_WITHIN, EXPECTED } from '../../soak/expectations.ts'
import { FAULT_KINDS, RESTARTS } from '../../soak/fault-kinds.ts'
import { HIT_RATIO_DELAY_MS, plan, SLACK_MS } from '../../soak/schedule.ts'

// npm run soak's timetable and alert expectations, pinned without running it.

t.test('soak: every alert the soak expects or times is one alerts.yml has', async t => {
  const names = alertNames(loadRules())
  for (const e of Object.values(EXPECTED).flat()) t.ok(names.includes(e.alert), `${e.alert} is in alerts.yml`)
  for (const alert of Object.keys(CLEARS_WITHIN)) t.ok(names.includes(alert), `${alert} is in alerts.yml`)
})

const everyFault = { faults: FAULT_KINDS, instances: 3 }

t.test('soak: the default run passes every fault once, holds each long enough for its alerts and recovers long enough to see them clear', async t => {
  const p = plan({ minutes: undefined, timeScale: 10, ...everyFault })
  t.same(p.steps.map(s => s.kind), [...FAULT_KINDS], 'each fault once, restarts first')
  for (const step of p.steps) {
    for (const e of step.expected) {
      t.equal(e.deadlineMs, seconds(e.within) * 100 + SLACK_MS, `${step.kind}: ${e.alert} is due at a tenth of its documented time, and the slack`)
      t.ok(step.holdMs > e.deadlineMs, `${step.kind} lasts past ${e.alert}'s deadline`)
    }
    for (const alert of Object.keys(CLEARS_WITHIN)) t.ok(step.recoverMs > p.clearDeadlineMs(alert), `${step.kind}: the recovery outlasts ${alert}'s clearing`)
    t.ok(step.recoverMs >= HIT_RATIO_DELAY_MS + p.hitRatioWindowMs, `${step.kind}: the recovery holds the hit ratio's window`)
  }
  t.ok(p.totalMs < 6 * 60_000, `the faults and the baseline take ${(p.totalMs / 60_000).toFixed(1)} minutes, under 6`)
})

t.test('soak: an hour at real time repeats the faults, restarts only in the first half', async t => {
  const p = plan({ minutes: 60, timeScale: 1, ...everyFault })
  t.ok(p.totalMs <= 60 * 60_000, 'fits the hour')
  t.ok(p.totalMs > 50 * 60_000, 'and fills most of it')
  t.same([...new Set(p.steps.map(s => s.kind))].sort(), [...FAULT_KINDS].sort(), 'every fault at least once')
  let at = p.baselineMs
  for (const step of p.steps) {
    if (RESTARTS.has(step.kind)) t.ok(at < 30 * 60_000 || step.pass === 0, `${step.kind} starts at ${Math.round(at / 60_000)} min`)
    for (const e of step.expected) t.ok(step.holdMs > seconds(e.within) * 1000, `${step.kind} lasts past ${e.alert}'s documented ${e.within}`)
    at += step.holdMs + step.recoverMs
  }
  t.equal(p.restartEveryMs, 20_000, 'a rolling restart every 20 s')
})

t.test('the alert rules shortened: windows, offsets, for: and keep_firing_for: divided, nothing else touched', async t => {
  const rules: Rules = {
    groups: [{
      name: 'g',
      rules: [{ alert: 'A', expr: 'rate(x[5m]) > 0 and max_over_time(y[1m30s:30s]) > 1 unless z offset 10m', for: '2m', keep_firing_for: '1m', labels: { severity: 'warning' } }]
    }]
  }
  const [r] = shortenRules(rules, { windowsBy: 10, forBy: 10, minWindowSeconds: 0 }).groups[0]!.rules
  t.equal(r!.expr, 'rate(x[30s]) > 0 and max_over_time(y[9s:3s]) > 1 unless z offset 60s')
  t.equal(r!.for, '12s')
  t.equal(r!.keep_firing_for, '6s')
  t.same(r!.labels, { severity: 'warning' })
  const [floored] = shortenRules(rules, { windowsBy: 60, forBy: 60, minWindowSeconds: 4 }).groups[0]!.rules
  t.match(floored!.expr, /rate\(x\[5s\]\).*y\[4s:4s\].*offset 10s/, 'windows no shorter than the floor; a fraction in milliseconds')
  t.equal(floored!.for, '2s')
  t.throws(() => seconds('5 minutes'), /not a Prometheus duration/)
})
