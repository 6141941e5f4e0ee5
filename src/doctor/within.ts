// A dependency that stops answering must not hang the doctor.
import { TimeoutError } from '../errors.js'

export async function within<T> (ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([work, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TimeoutError('TIMEOUT', `no answer within ${ms} ms`)), ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}
