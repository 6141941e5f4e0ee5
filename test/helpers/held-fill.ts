// A test seam for the classic race: holds every cache fill of an app between
// its Postgres read and its Redis write until the test releases it.
export interface HeldFill {
  /** Pass as the app's beforeFill. */
  beforeFill: () => Promise<void>
  /** Resolves when the next fill reaches the hold. */
  next(): Promise<void>
  release(): void
}

export function heldFill (): HeldFill {
  let reached: (() => void) | undefined
  let release: (() => void) | undefined
  return {
    beforeFill: async () => {
      reached?.()
      await new Promise<void>(resolve => { release = resolve })
    },
    next: () => new Promise<void>(resolve => { reached = resolve }),
    release: () => release?.()
  }
}
