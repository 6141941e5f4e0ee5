// Everything the bench starts registers how to undo it here; the stack runs in
// reverse on success, on error and on Ctrl-C, so no child or database is left.
type Task = () => unknown

const tasks: Array<{ name: string, fn: Task }> = []

export function onCleanup (name: string, fn: Task): () => void {
  const task = { name, fn }
  tasks.push(task)
  return () => {
    const i = tasks.indexOf(task)
    if (i !== -1) tasks.splice(i, 1)
  }
}

export async function runCleanup (): Promise<void> {
  for (let task = tasks.pop(); task !== undefined; task = tasks.pop()) {
    try {
      await task.fn()
    } catch (err) {
      console.error(`cleanup of ${task.name} failed: ${(err as Error).message}`)
    }
  }
}

export function cleanupOnSignals (what = 'stopping children and dropping the bench database'): void {
  let stopping = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      console.error(`\n${signal}: ${what}`)
      runCleanup().finally(() => process.exit(130))
    })
  }
}
