-- Sign-in alerts: an outbox of emails, written in the same transaction as the session
-- that caused them, sent by a background worker.

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users(id),
    session_id       INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
    -- 'new_device', 'new_country' or 'new_device,new_country'
    reasons          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    sent_at          INTEGER,
    created_at       INTEGER NOT NULL,
    -- how many suppressed alerts this one reports as held back
    held_back        INTEGER NOT NULL DEFAULT 0,
    -- for a suppressed alert: the alert whose email mentioned it
    reported_by      INTEGER REFERENCES alerts(id),
    -- stable across retries, so a receiver can recognise a resend
    message_id       TEXT NOT NULL,
    -- what the email says, as JSON, so it survives the session row's deletion
    details          TEXT NOT NULL,
    -- when the "Not you? End this session" link was used (it works once)
    link_used_at     INTEGER
);
CREATE INDEX alerts_due ON alerts(next_attempt_at) WHERE status = 'pending';
CREATE INDEX alerts_user ON alerts(user_id, created_at);

-- Server-side keys (e.g. for signing alert links), created at first start.
CREATE TABLE secrets (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
) WITHOUT ROWID;

CREATE INDEX login_records_at ON login_records(at);
