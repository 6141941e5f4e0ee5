// A session and its user as the service answers them. Times are epoch
// milliseconds: compact in Redis, cheap to compare on the hot path.
export interface SessionRecord {
  id: string
  userId: string
  expiresAt: number
  createdAt: number
  lastActivityAt: number | null
  ipAddress: string | null
  userAgent: string | null
  email: string
  firstName: string | null
  lastName: string | null
  username: string | null
  /** The operator's extra columns (SESSION_EXTRA_FIELDS, then USER_EXTRA_FIELDS), in their order. */
  extra: readonly unknown[]
}

export const NO_EXTRA: readonly unknown[] = Object.freeze([])
