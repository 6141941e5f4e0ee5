-- Sliding expiry moves expires_at forward as a session is used, written behind
-- by the service (ACTIVITY_RESOLUTION_SECONDS at most once per session). An
-- extension needs no invalidation: a cached copy with the earlier expiry is
-- not answered past it, the lookup falls through to Postgres. Only a change
-- that could make a cached answer wrong is notified: a shorter expiry, or any
-- other field.
DROP TRIGGER IF EXISTS session_validator_updated ON platform.user_sessions;
CREATE TRIGGER session_validator_updated
  AFTER UPDATE OF token, user_id, expires_at, created_at, ip_address, user_agent ON platform.user_sessions
  FOR EACH ROW
  WHEN (OLD.token IS DISTINCT FROM NEW.token
     OR OLD.user_id IS DISTINCT FROM NEW.user_id
     OR NEW.expires_at < OLD.expires_at
     OR OLD.created_at IS DISTINCT FROM NEW.created_at
     OR OLD.ip_address IS DISTINCT FROM NEW.ip_address
     OR OLD.user_agent IS DISTINCT FROM NEW.user_agent)
  EXECUTE FUNCTION session_validator.notify_session_changed();

-- The user's sessions, newest activity first (GET /users/{id}/sessions).
CREATE INDEX IF NOT EXISTS user_sessions_user_activity_idx
  ON platform.user_sessions (user_id, (coalesce(last_activity_at, created_at)) DESC, id DESC);
