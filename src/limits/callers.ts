// Who is asking: the caller (a backend or a proxy, told apart by its API key
// or its address) and, when a trusted caller forwards it, the end user's address.
import { BlockList, isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { normalizeIP } from '@fastify/rate-limit'
import { sha256Hex } from '../sha256.js'

export interface Callers {
  /** A digest of the caller's API key (never the key), or its address (an IPv6 /64 counts as one). */
  caller(request: FastifyRequest): string
  /** The end user's address as a trusted caller forwarded it; undefined when there is none to believe. */
  endUser(request: FastifyRequest): string | undefined
}

export interface CallerOptions {
  keysOn: boolean
  /** Addresses and CIDRs whose forwarded addresses are believed (TRUSTED_PROXIES). */
  trustedProxies: readonly string[]
}

function family (ip: string): 'ipv4' | 'ipv6' {
  return isIP(ip) === 6 ? 'ipv6' : 'ipv4'
}

function trustList (entries: readonly string[]): BlockList {
  const list = new BlockList()
  for (const entry of entries) {
    const [ip, bits] = entry.split('/') as [string, string | undefined]
    if (bits === undefined) list.addAddress(ip, family(ip))
    else list.addSubnet(ip, Number(bits), family(ip))
  }
  return list
}

// X-Real-IP, else the last address of X-Forwarded-For: the one the caller
// itself appended (what its own edge saw), which the end user cannot choose.
function forwarded (request: FastifyRequest): string | undefined {
  const real = request.headers['x-real-ip']
  if (typeof real === 'string') return real.trim()
  const chain = request.headers['x-forwarded-for']
  const last = typeof chain === 'string' ? chain.slice(chain.lastIndexOf(',') + 1) : chain?.at(-1)
  return last?.trim()
}

export function createCallers (o: CallerOptions): Callers {
  const trusted = trustList(o.trustedProxies)
  const keyOf = (request: FastifyRequest) => {
    const key = request.headers['x-api-key']
    return o.keysOn && typeof key === 'string' ? key : undefined
  }
  return {
    caller (request) {
      // behind the API-key guard: a key here is a valid one
      const key = keyOf(request)
      return key !== undefined ? `k:${sha256Hex(key).slice(0, 32)}` : `a:${normalizeIP(request.ip)}`
    },
    endUser (request) {
      const ip = request.ip
      if (keyOf(request) === undefined && !(isIP(ip) !== 0 && trusted.check(ip, family(ip)))) return undefined
      const address = forwarded(request)
      return address !== undefined && isIP(address) !== 0 ? normalizeIP(address) : undefined
    }
  }
}
