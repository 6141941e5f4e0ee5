// `npm run doctor` / `node dist/doctor.js [--json] [--strict]`: checks the
// configuration and every dependency as the service would meet them; exit 1
// when something would break the service (or, with --strict, is not as recommended).
import { runDoctor } from './doctor/run.js'
import { formatText } from './doctor/report.js'

// --p99-ms: a check run from outside the private network (a laptop on a VPN)
// can hold Redis to a looser latency mark than Studio's 5 ms.
const args = process.argv.slice(2)
const MARK = /^--p99-ms=(\d+(?:\.\d+)?)$/
const marks = args.map(a => MARK.exec(a)?.[1])
const FLAGS = new Set(['--json', '--strict'])
if (args.some((a, i) => !FLAGS.has(a) && marks[i] === undefined)) {
  process.stderr.write('usage: node dist/doctor.js [--json] [--strict] [--p99-ms=<milliseconds>]\n')
  process.exit(2)
}
const mark = marks.find(m => m !== undefined)
const result = await runDoctor(process.env, { strict: args.includes('--strict'), ...(mark === undefined ? {} : { p99Ms: Number(mark) }) })
process.stdout.write(args.includes('--json') ? JSON.stringify(result, null, 2) + '\n' : formatText(result))
process.exitCode = result.ok ? 0 : 1
