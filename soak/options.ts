// npm run soak's command line.
import { parseArgs } from 'node:util'
import { positive } from '../bench/options.ts'
import { FAULT_KINDS, type FaultKind } from './fault-kinds.ts'

export interface Options {
  /** the run's length in minutes; undefined: one pass over every fault, compressed (the CI run) */
  minutes: number | undefined
  /** time compression of the alert rules and their documented times (1: real time) */
  timeScale: number
  /** validations per second, over the three instances */
  rate: number
  /** live sessions the traffic draws from */
  sessions: number
  faults: FaultKind[]
  /** where the run's logs and table go */
  resultsDir: string | undefined
}

const HELP = `npm run soak [-- options]
  --minutes N        run for about N minutes, repeating the faults (default: one
                     pass over every fault, compressed; about 5 minutes)
  --time-scale K     divide the alert rules' windows and for:, Prometheus'
                     interval and the documented alert times by K (default 10;
                     1 with --minutes 30 or more); the service runs at its own pace
  --rate N           validations per second over the three instances (120)
  --sessions N       live sessions in the traffic (300)
  --faults A,B       only these faults (${FAULT_KINDS.join(', ')})
  --results DIR      keep the instances' logs and the table there (default soak/results/<time>)`

function faults (value: string | undefined): FaultKind[] {
  if (value === undefined) return [...FAULT_KINDS]
  const names = value.split(',').map(s => s.trim()).filter(s => s !== '')
  for (const name of names) {
    if (!(FAULT_KINDS as readonly string[]).includes(name)) throw new Error(`--faults: unknown fault "${name}" (one of ${FAULT_KINDS.join(', ')})`)
  }
  if (names.length === 0) throw new Error('--faults needs at least one fault')
  return FAULT_KINDS.filter(k => names.includes(k))
}

export function parseOptions (argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', default: false },
      minutes: { type: 'string' },
      'time-scale': { type: 'string' },
      rate: { type: 'string' },
      sessions: { type: 'string' },
      faults: { type: 'string' },
      results: { type: 'string' }
    }
  })
  if (values.help) {
    console.log(HELP)
    return undefined
  }
  const minutes = values.minutes === undefined ? undefined : positive(values.minutes, 'minutes', 0)
  return {
    minutes,
    timeScale: positive(values['time-scale'], 'time-scale', minutes !== undefined && minutes >= 30 ? 1 : 10),
    rate: positive(values.rate, 'rate', 120),
    sessions: Math.floor(positive(values.sessions, 'sessions', 300)),
    faults: faults(values.faults),
    resultsDir: values.results
  }
}
