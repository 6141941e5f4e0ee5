import { existsSync } from 'node:fs'

// testcontainers is used only when a Docker engine answers (a contributor's
// laptop); these machines have the client but no engine.
let answer: Promise<boolean> | undefined

export function dockerAvailable (): Promise<boolean> {
  answer ??= (async () => {
    if (process.env.DOCKER_HOST === undefined && !existsSync('/var/run/docker.sock')) return false
    try {
      const { getContainerRuntimeClient } = await import('testcontainers')
      await Promise.race([
        getContainerRuntimeClient(),
        new Promise((_resolve, reject) => setTimeout(() => reject(new Error('docker did not answer')), 5000))
      ])
      return true
    } catch {
      return false
    }
  })()
  return answer
}
