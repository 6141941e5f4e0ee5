-- Studio's tables, as the service reads them. IF NOT EXISTS: on Studio's own
-- database they are already there and are left as they are.
CREATE SCHEMA IF NOT EXISTS platform;

CREATE TABLE IF NOT EXISTS platform.users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL,
  first_name text,
  last_name text,
  username text,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS platform.user_sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES platform.users (id) ON DELETE CASCADE,
  -- lowercase hex SHA-256 of the raw token; the raw token is never stored
  token text NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  last_activity_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  ip_address text,
  user_agent text
);

CREATE INDEX IF NOT EXISTS user_sessions_user_id_idx ON platform.user_sessions (user_id);
