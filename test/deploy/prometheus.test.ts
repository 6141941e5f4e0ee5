import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { scrapeAfterTraffic } from '../helpers/traffic.js'

const rulesDir = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url))

function promtool (args: string[], input?: string) {
  return spawnSync('promtool', args, { cwd: rulesDir, input, encoding: 'utf8', timeout: 60_000 })
}

// Gauges from prom-client's default metrics that end in _total; the names are
// the library's, not ours, and renaming them would break its users' dashboards.
const LIBRARY_LINT = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])

const probe = promtool(['--version'])
if (probe.error !== undefined) {
  t.fail(`promtool is not installed (${probe.error.message}): apt-get install prometheus, as .ci/run does`)
} else {
  t.test('the alert rules are valid', async t => {
    const res = promtool(['check', 'rules', 'alerts.yml'])
    t.equal(res.status, 0, 'promtool check rules succeeds', { output: res.stdout + res.stderr })
  })

  t.test('each alert fires on a series that should fire it and on no other', async t => {
    const res = promtool(['test', 'rules', 'alerts.test.yml'])
    t.equal(res.status, 0, 'promtool test rules succeeds', { output: res.stdout + res.stderr })
  })

  t.test('the /metrics exposition after real traffic passes promtool check metrics', async t => {
    const exposition = await scrapeAfterTraffic(t)
    t.match(exposition, /^session_validations_total\{result="valid",source="cache"\} 1$/m, 'the traffic shows in the scrape')

    const res = promtool(['check', 'metrics'], exposition)
    // 0: clean; 3: lint problems only, judged below; anything else: not parsed
    t.ok(res.status === 0 || res.status === 3, 'promtool parses the exposition', { status: res.status, output: res.stderr })
    const problems = (res.stdout + res.stderr).split('\n').filter(line => line.trim() !== '')
    const ours = problems.filter(line => !LIBRARY_LINT.has(line.split(' ')[0]!))
    t.same(ours, [], 'no lint problems in metrics the service defines')
  })
}
