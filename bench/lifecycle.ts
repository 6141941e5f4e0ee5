// Issue 15's session lifecycle as the bench turns it on: an idle timeout and
// sliding expiry with an absolute cap, set on one instance of its own.
export const LIFECYCLE_ENV = {
  SESSION_IDLE_TIMEOUT_SECONDS: '1800',
  SESSION_SLIDING_SECONDS: '3600',
  SESSION_ABSOLUTE_MAX_SECONDS: '2592000'
} as const

export const SLIDING_SECONDS = Number(LIFECYCLE_ENV.SESSION_SLIDING_SECONDS)
