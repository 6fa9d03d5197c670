-- SPEC §21: ending a session ends it in every app (OpenID Connect Back-Channel Logout).

-- The clients with a `backchannel_logout_uri`, mirrored from the configuration at start,
-- so that the triggers below know, in the transaction that ends a grant, whom to tell.
CREATE TABLE oidc_backchannel_clients (
    client_id  TEXT PRIMARY KEY
) WITHOUT ROWID;

-- The logout outbox: one row per (ended session or signed-out grant, client), sent by
-- the worker with a fresh logout token per attempt, retried with backoff for 24 h. No
-- foreign keys: a deleted person's apps are still told.
CREATE TABLE oidc_logouts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id        TEXT NOT NULL,
    application      TEXT NOT NULL,
    user_id          INTEGER NOT NULL,
    -- the session's public id: the token's `sid`
    sid              TEXT NOT NULL,
    -- pending, delivered, failed (given up)
    status           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);
CREATE INDEX oidc_logouts_due ON oidc_logouts(next_attempt_at) WHERE status = 'pending';
CREATE INDEX oidc_logouts_sid ON oidc_logouts(sid, client_id);

-- A grant that ends with its session, or is signed out alone (§21's per-app sign-out),
-- queues one logout per client of a back-channel URI (one, even when the session made
-- several grants for it). A reused code or refresh token, or a revocation by the client
-- itself, tells nobody: the client knows.
CREATE TRIGGER oidc_grant_end_logout AFTER UPDATE OF ended_at ON oidc_grants
WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
    AND NEW.end_reason IN ('session_ended', 'signed_out')
    AND EXISTS (SELECT 1 FROM oidc_backchannel_clients b WHERE b.client_id = NEW.client_id)
BEGIN
    INSERT INTO oidc_logouts (client_id, application, user_id, sid, next_attempt_at, created_at)
    SELECT NEW.client_id, NEW.application, NEW.user_id, NEW.sid, 0, CAST(strftime('%s', 'now') AS INTEGER)
    WHERE NOT EXISTS (SELECT 1 FROM oidc_logouts l
        WHERE l.sid = NEW.sid AND l.client_id = NEW.client_id AND l.status = 'pending');
END;

-- A session deleted with its person (or by retention) while its grants were live: its
-- grants go by the cascade, and their clients are told as well.
CREATE TRIGGER oidc_grant_delete_logout AFTER DELETE ON oidc_grants
WHEN OLD.ended_at IS NULL
    AND EXISTS (SELECT 1 FROM oidc_backchannel_clients b WHERE b.client_id = OLD.client_id)
BEGIN
    INSERT INTO oidc_logouts (client_id, application, user_id, sid, next_attempt_at, created_at)
    SELECT OLD.client_id, OLD.application, OLD.user_id, OLD.sid, 0, CAST(strftime('%s', 'now') AS INTEGER)
    WHERE NOT EXISTS (SELECT 1 FROM oidc_logouts l
        WHERE l.sid = OLD.sid AND l.client_id = OLD.client_id AND l.status = 'pending');
END;
