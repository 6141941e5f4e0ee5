// Long background work in slices: each slice runs synchronously for well
// under a millisecond, and the event loop serves requests in between.
import { setImmediate as nextTurn } from 'node:timers/promises'

export async function inSlices<T> (items: readonly T[], size: number, work: (slice: readonly T[]) => unknown): Promise<void> {
  for (let i = 0; i < items.length; i += size) {
    if (i > 0) await nextTurn()
    await work(items.slice(i, i + size))
  }
}
