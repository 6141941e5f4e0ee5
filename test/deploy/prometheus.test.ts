import { spawnSync } from 'node:child_process'
import { globSync } from 'node:fs'
import t from 'tap'
import { ROOT } from '../helpers/process.js'
import { scrapeAfterTraffic } from '../helpers/traffic.js'

// What an operator points at the rules: a glob over deploy/prometheus/*.yml
// (promtool check rules, or a Prometheus rule_files entry).
const RULES_GLOB = 'deploy/prometheus/*.yml'

function promtool (args: string[], opts: { input?: string, cwd?: string } = {}) {
  return spawnSync('promtool', args, { cwd: opts.cwd ?? ROOT, input: opts.input, encoding: 'utf8', timeout: 60_000 })
}

const probe = promtool(['--version'])
if (probe.error !== undefined) {
  t.fail(`promtool is not installed (${probe.error.message}): apt-get install prometheus, as .ci/run does`)
} else {
  t.test(`the rules glob ${RULES_GLOB} reads only rules, and they are valid`, async t => {
    const files = globSync(RULES_GLOB, { cwd: ROOT }).sort()
    t.same(files, ['deploy/prometheus/alerts.yml'], 'the alert unit tests live elsewhere (deploy/prometheus/tests/)')
    const res = promtool(['check', 'rules', ...files])
    t.equal(res.status, 0, 'promtool check rules succeeds', { output: res.stdout + res.stderr })
  })

  t.test('each alert fires on a series that should fire it and on no other', async t => {
    const res = promtool(['test', 'rules', 'tests/alerts.test.yml'], { cwd: `${ROOT}deploy/prometheus` })
    t.equal(res.status, 0, 'promtool test rules succeeds', { output: res.stdout + res.stderr })
  })

  t.test('the /metrics exposition after real traffic passes promtool check metrics, unfiltered', async t => {
    const exposition = await scrapeAfterTraffic(t)
    t.match(exposition, /^session_validations_total\{result="valid",source="cache"\} 1$/m, 'the traffic shows in the scrape')
    t.match(exposition, /^# TYPE nodejs_active_handles gauge$/m, 'the process metrics are in it')
    const res = promtool(['check', 'metrics'], { input: exposition })
    t.equal(res.status, 0, 'promtool check metrics exits 0', { output: res.stdout + res.stderr })
    t.equal((res.stdout + res.stderr).trim(), '', 'and reports nothing')
  })
}
