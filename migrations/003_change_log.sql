-- The change log and the instance registry of the coherence protocol
-- (src/sessions/coherence/). Every change the triggers notify is also appended
-- to session_validator.changes in the same transaction, so that an instance
-- that was not listening (starting, reconnecting) can replay what it missed
-- instead of moving the cache epoch for the whole fleet.

CREATE TABLE IF NOT EXISTS session_validator.changes (
  id bigserial PRIMARY KEY,
  -- the top-level transaction id: replay is by "xid >= the snapshot xmin an
  -- applier last confirmed", which is commit-order safe (a bigserial is not:
  -- ids are taken at insert, not at commit)
  xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
  kind text NOT NULL CHECK (kind IN ('s', 'u')),
  key text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS changes_xid_idx ON session_validator.changes (xid);
CREATE INDEX IF NOT EXISTS changes_created_at_idx ON session_validator.changes (created_at);

-- The highest xid pruning has removed: a replay that would need entries at or
-- below it cannot prove its gap was covered, and moves the epoch instead.
CREATE TABLE IF NOT EXISTS session_validator.change_log_state (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  pruned_through bigint NOT NULL DEFAULT 0
);
INSERT INTO session_validator.change_log_state (id) VALUES (true) ON CONFLICT (id) DO NOTHING;

-- Instances that may answer from their own memory. A revoke waits for an
-- acknowledgement from every instance registered here (or for the lease
-- length, after which one that did not answer can no longer serve from memory).
CREATE TABLE IF NOT EXISTS session_validator.instances (
  id text PRIMARY KEY,
  channel text NOT NULL,
  lease_until timestamptz NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION session_validator.notify_session_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO session_validator.changes (kind, key) VALUES ('s', OLD.token);
  PERFORM pg_notify('session_validator', 's:' || OLD.token);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION session_validator.notify_user_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO session_validator.changes (kind, key) VALUES ('u', OLD.id::text);
  PERFORM pg_notify('session_validator', 'u:' || OLD.id::text);
  RETURN NULL;
END
$$;
