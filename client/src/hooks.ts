// The caller's hooks (onRetry, onOutcome) run inside the client's calls: one
// that throws, or returns a promise that rejects, must not turn an answer
// into a rejection. It is ignored, and reported once as a process warning.

/** A hook the client calls; what it returns is not awaited. */
export type Hook<T> = (info: T) => unknown

export function safely<T> (hook: Hook<T> | undefined, name: string): (info: T) => void {
  if (hook === undefined) return () => {}
  let warned = false
  const report = (err: unknown) => {
    if (warned) return
    warned = true
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    process.emitWarning(`the ${name} hook threw (${what}); the client ignores it`, { code: 'SV_CLIENT_HOOK_FAILED' })
  }
  return info => {
    try {
      const returned = hook(info)
      if (typeof (returned as PromiseLike<unknown> | undefined)?.then === 'function') (returned as PromiseLike<unknown>).then(undefined, report)
    } catch (err) {
      report(err)
    }
  }
}
