-- Changes made straight in Postgres (Studio's own logout, a renamed user, a
-- deleted user) reach every instance through NOTIFY on one channel. Payloads:
--   s:<token hash>  a session row was deleted or changed
--   u:<user id>     a user's fields changed or the user was deleted
--   e:<epoch>       the cache epoch moved: entries of older epochs are void
CREATE SCHEMA IF NOT EXISTS session_validator;

CREATE TABLE IF NOT EXISTS session_validator.cache_epoch (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  epoch bigint NOT NULL DEFAULT 1
);
INSERT INTO session_validator.cache_epoch (id) VALUES (true) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION session_validator.notify_session_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('session_validator', 's:' || OLD.token);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION session_validator.notify_user_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('session_validator', 'u:' || OLD.id::text);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION session_validator.notify_epoch_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('session_validator', 'e:' || NEW.epoch::text);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS session_validator_deleted ON platform.user_sessions;
CREATE TRIGGER session_validator_deleted AFTER DELETE ON platform.user_sessions
  FOR EACH ROW EXECUTE FUNCTION session_validator.notify_session_changed();

-- last_activity_at is left out on purpose: the write-behind of activity must
-- not flush the cache.
DROP TRIGGER IF EXISTS session_validator_updated ON platform.user_sessions;
CREATE TRIGGER session_validator_updated
  AFTER UPDATE OF token, user_id, expires_at, created_at, ip_address, user_agent ON platform.user_sessions
  FOR EACH ROW EXECUTE FUNCTION session_validator.notify_session_changed();

DROP TRIGGER IF EXISTS session_validator_user_changed ON platform.users;
CREATE TRIGGER session_validator_user_changed
  AFTER UPDATE OF id, email, first_name, last_name, username OR DELETE ON platform.users
  FOR EACH ROW EXECUTE FUNCTION session_validator.notify_user_changed();

DROP TRIGGER IF EXISTS session_validator_epoch_changed ON session_validator.cache_epoch;
CREATE TRIGGER session_validator_epoch_changed AFTER UPDATE ON session_validator.cache_epoch
  FOR EACH ROW EXECUTE FUNCTION session_validator.notify_epoch_changed();
