import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitFor } from './ports.ts'

interface Teardown { teardown(fn: () => unknown): void }

/** One job, with one target or several (instances of one service, as in production). */
export type ScrapeJob = { name: string, target: string } | { name: string, targets: string[] }

export interface Alert { labels: Record<string, string>, state: 'pending' | 'firing', activeAt: string, value: string }
export interface Sample { metric: Record<string, string>, value: [number, string] }

export interface Prometheus {
  url: string
  alerts(): Promise<Alert[]>
  /** Alerting rules as loaded, by name. */
  rules(): Promise<Map<string, { health: string, state: string }>>
  query(expr: string): Promise<Sample[]>
  log(): string
  /** SIGTERM (SIGKILL after 5 s); its folder goes at teardown. */
  stop(): Promise<void>
}

async function api<T> (url: string): Promise<T> {
  const res = await fetch(url)
  const body = await res.json() as { status: string, data: T, error?: string }
  if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? res.status}`)
  return body.data
}

// Debian's prometheus on a free loopback port, with its own data directory in
// a temporary folder, scraping `jobs` and evaluating `rules` (YAML text) every
// `intervalSeconds`. Stopped by PID, its folder removed, at teardown.
export async function startPrometheus (t: Teardown, opts: { jobs: ScrapeJob[], rules: string, intervalSeconds: number }): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-prometheus-'))
  const port = await freePort()
  // in milliseconds: Prometheus reads no fraction of a second
  const every = `${Math.round(opts.intervalSeconds * 1000)}ms`
  await writeFile(join(dir, 'rules.yml'), opts.rules)
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify({
    global: { scrape_interval: every, scrape_timeout: every, evaluation_interval: every },
    rule_files: [join(dir, 'rules.yml')],
    scrape_configs: opts.jobs.map(job => ({ job_name: job.name, static_configs: [{ targets: 'targets' in job ? job.targets : [job.target] }] }))
  }))
  const child = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.on('data', d => { log += d })
  // not installed, say: told by the readiness wait below, not thrown as an unhandled event
  let spawnError: Error | undefined
  child.once('error', err => { spawnError = err })
  const exited = new Promise(resolve => child.once('exit', resolve))
  async function stop (): Promise<void> {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  t.teardown(async () => {
    await stop()
    await rm(dir, { recursive: true, force: true })
  })
  const url = `http://127.0.0.1:${port}`
  await waitFor('prometheus to be ready', async () => {
    if (spawnError !== undefined) throw new Error(`prometheus could not be started (${(spawnError as NodeJS.ErrnoException).code ?? spawnError.message}): is Debian's prometheus package installed?`)
    if (child.exitCode !== null) throw new Error(`prometheus exited: ${log}`)
    try {
      return (await fetch(`${url}/-/ready`)).status === 200
    } catch {
      return false
    }
  }, 20_000, 100)
  return {
    url,
    log: () => log,
    stop,
    alerts: async () => (await api<{ alerts: Alert[] }>(`${url}/api/v1/alerts`)).alerts,
    async rules () {
      const data = await api<{ groups: Array<{ rules: Array<{ type: string, name: string, health: string, state: string }> }> }>(`${url}/api/v1/rules?type=alert`)
      return new Map(data.groups.flatMap(g => g.rules).map(r => [r.name, { health: r.health, state: r.state }]))
    },
    query: async expr => (await api<{ result: Sample[] }>(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`)).result
  }
}
