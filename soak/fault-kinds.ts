// The faults the soak puts the fleet through, in the order of a pass: those
// that restart instances first, so that the processes judged for leaks live
// through the whole second half of a run.
export const FAULT_KINDS = [
  'rolling-restart',
  'instance-kill',
  'redis-kill',
  'redis-freeze',
  'redis-maxmemory',
  'postgres-resets',
  'postgres-partition',
  'postgres-restart',
  'unknown-flood'
] as const

export type FaultKind = typeof FAULT_KINDS[number]

/** Faults that restart service processes. */
export const RESTARTS: ReadonlySet<FaultKind> = new Set(['rolling-restart', 'instance-kill'])
