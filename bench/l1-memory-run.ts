import { fileURLToPath } from 'node:url'
import { startChild } from './children.ts'
import type { L1Memory } from './l1-memory.ts'

const SCRIPT = fileURLToPath(new URL('./l1-memory.ts', import.meta.url))

/** Runs bench/l1-memory.ts in a process of its own (its heap is what is weighed). */
export async function measureL1Memory (): Promise<L1Memory> {
  const child = startChild('l1-memory', process.execPath, ['--expose-gc', SCRIPT], { BENCH_BUILD: process.env.BENCH_BUILD ?? '' })
  const code = await child.exited
  const line = child.output().split('\n').find(l => l.startsWith('BENCH_JSON '))
  if (code !== 0 || line === undefined) throw new Error(`l1-memory failed (exit ${code}):\n${child.output()}`)
  return JSON.parse(line.slice('BENCH_JSON '.length)) as L1Memory
}
