// `npm run doctor` / `node dist/doctor.js [--json]`: checks the configuration
// and every dependency as the service would meet them; exit 0 only when all pass.
import { runDoctor } from './doctor/run.js'
import { formatText } from './doctor/report.js'

// --p99-ms: a check run from outside the private network (a laptop on a VPN)
// can hold Redis to a looser latency mark than Studio's 5 ms.
const args = process.argv.slice(2)
const MARK = /^--p99-ms=(\d+(?:\.\d+)?)$/
const marks = args.map(a => MARK.exec(a)?.[1])
if (args.some((a, i) => a !== '--json' && marks[i] === undefined)) {
  process.stderr.write('usage: node dist/doctor.js [--json] [--p99-ms=<milliseconds>]\n')
  process.exit(2)
}
const mark = marks.find(m => m !== undefined)
const result = await runDoctor(process.env, mark === undefined ? {} : { p99Ms: Number(mark) })
process.stdout.write(args.includes('--json') ? JSON.stringify(result, null, 2) + '\n' : formatText(result))
process.exitCode = result.ok ? 0 : 1
