// A full garbage collection in an instance, through the V8 inspector it was
// started with (loopback only): what its heap holds once idle is then what
// is live, not whatever garbage a quiet process has not collected yet.

/** Collects garbage in the process whose inspector listens on `port` (twice: a first pass can leave finalized objects for the second). */
export async function collectGarbage (port: number): Promise<void> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(5000) })).json() as Array<{ webSocketDebuggerUrl: string }>
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl)
  try {
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve, { once: true })
      ws.addEventListener('error', () => reject(new Error('inspector: no connection')), { once: true })
    })
    for (const id of [1, 2]) {
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('inspector: no answer')), 10_000)
        ws.addEventListener('message', event => {
          if ((JSON.parse(String(event.data)) as { id?: number }).id === id) { clearTimeout(timer); resolve() }
        })
      })
      ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }))
      await done
    }
  } finally {
    ws.close()
  }
}
