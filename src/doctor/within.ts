// A dependency that stops answering must not hang the doctor.

class TimedOut extends Error {
  code = 'TIMEOUT'
}

export async function within<T> (ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([work, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TimedOut(`no answer within ${ms} ms`)), ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

/** The error's code (a driver's or a Redis reply's first word), never its message. */
export function codeOf (err: unknown): string {
  const e = err as { code?: unknown, message?: unknown, name?: unknown } | undefined
  if (typeof e?.code === 'string') return e.code
  // Redis replies: "WRONGPASS invalid username-password pair", "NOPERM ..."
  if (typeof e?.message === 'string' && /^[A-Z][A-Z_-]{2,}\b/.test(e.message)) return e.message.split(' ')[0]!
  return typeof e?.name === 'string' ? e.name : 'error'
}
