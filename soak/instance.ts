// One instance of the service as the soak runs it: the built server in a
// process of its own, reaching Postgres and Redis each through a fault proxy
// of its own, restarted on the same port. An exit the soak did not cause is
// recorded (with the end of its log) and the process started again, as
// Railway would, so that the run goes on and the failure is reported.
import { createWriteStream, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { startChild, waitUntilServing, type Child } from '../bench/children.ts'
import { serverEntry } from '../bench/dist.ts'
import { freePort } from '../src/free-port.ts'
import type { FaultProxy } from '../test/helpers/fault-proxy.ts'
import { httpClient, type Client } from './http.ts'

export interface UnexpectedExit {
  instance: string
  at: number
  code: number | null
  signal: string | null
  /** the last lines of its output */
  tail: string
}

export interface Instance {
  name: string
  port: number
  /** its V8 inspector's port (loopback): the soak collects garbage through it once idle */
  inspectPort: number
  target: string
  postgres: FaultProxy
  redis: FaultProxy
  http: Client
  /** the soak sends it traffic (a load balancer would: it is up and not being stopped) */
  routable: boolean
  /** the process answering now; a new one on each start */
  generation: number
  startedAt: number
  exits: UnexpectedExit[]
  start(): Promise<void>
  /** SIGTERM, as a deploy does; waits for the exit */
  stop(): Promise<void>
  /** SIGKILL */
  kill(): Promise<void>
}

// Once the soak is over, exits are its own and nothing starts again.
const soak = { over: false }
export const retireInstances = () => { soak.over = true }

export interface InstanceOptions {
  name: string
  env: Record<string, string>
  postgres: FaultProxy
  redis: FaultProxy
  logDir: string
  now: () => number
  log: (line: string) => void
}

export async function createInstance (o: InstanceOptions): Promise<Instance> {
  const port = await freePort()
  const inspectPort = await freePort()
  let child: Child | undefined
  let expecting = false
  let logFile: WriteStream | undefined

  const launch = async () => {
    expecting = false
    logFile?.end()
    inst.generation++
    logFile = createWriteStream(join(o.logDir, `${o.name}-${inst.generation}.log`))
    const c = child = startChild(`instance ${o.name}`, process.execPath, [`--inspect=127.0.0.1:${inspectPort}`, serverEntry()], {
      ...o.env, PORT: String(port), HOST: '127.0.0.1'
    })
    c.proc.stdout!.pipe(logFile, { end: false })
    c.proc.stderr!.pipe(logFile, { end: false })
    c.exited.then(code => {
      if (child !== c) return
      if (soak.over) inst.routable = false
      if (expecting || soak.over) return
      inst.routable = false
      const exit = { instance: o.name, at: o.now(), code, signal: c.proc.signalCode, tail: c.output().split('\n').slice(-12).join('\n') }
      inst.exits.push(exit)
      o.log(`instance ${o.name} exited on its own (code ${code}, signal ${exit.signal}); starting it again`)
      restartUntilUp().catch(() => {})
    }, () => {})
    try {
      await waitUntilServing(c, { url: `http://127.0.0.1:${port}/readyz` }, 60_000)
    } catch (err) {
      expecting = true
      await c.stop()
      throw err
    }
    inst.startedAt = o.now()
    inst.http.reset()
    inst.routable = true
  }

  // as a platform restarting a failed service: again and again until it serves
  async function restartUntilUp (): Promise<void> {
    for (let attempt = 1; !soak.over; attempt++) {
      await new Promise(resolve => setTimeout(resolve, 1000))
      if (soak.over || inst.routable) return
      try {
        await launch()
        return
      } catch (err) {
        o.log(`instance ${o.name} did not start again (attempt ${attempt}): ${(err as Error).message.split('\n')[0]}`)
      }
    }
  }

  const inst: Instance = {
    name: o.name,
    port,
    inspectPort,
    target: `127.0.0.1:${port}`,
    postgres: o.postgres,
    redis: o.redis,
    http: httpClient(port),
    routable: false,
    generation: 0,
    startedAt: 0,
    exits: [],
    start: launch,
    async stop () {
      inst.routable = false
      expecting = true
      await child?.stop()
      logFile?.end()
    },
    async kill () {
      inst.routable = false
      expecting = true
      const c = child
      if (c === undefined || c.proc.exitCode !== null || c.proc.signalCode !== null) return
      c.proc.kill('SIGKILL')
      await c.exited
      logFile?.end()
    }
  }
  return inst
}
