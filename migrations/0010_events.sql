-- The security log (SPEC §15): one row per security event, written in the transaction
-- that causes it. Users, actors and accounts are ids without foreign keys: a deleted
-- user's events stay, as tombstones without email, IP or device (SPEC §17).
--
-- `at` never goes below the `at` of the row before it (db/events.rs writes it so), and
-- ids grow in commit order (SQLite has one writer): so a time range is an id range, and
-- paging by id never skips a row that commits while someone pages.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    at               INTEGER NOT NULL,
    type             TEXT NOT NULL,
    actor_id         INTEGER,
    user_id          INTEGER,
    account_id       INTEGER,
    -- the public id of the session concerned
    session_id       TEXT,
    ip               TEXT NOT NULL DEFAULT '',
    country_code     TEXT,
    country_name     TEXT,
    city             TEXT,
    device_category  TEXT NOT NULL DEFAULT '',
    browser_name     TEXT NOT NULL DEFAULT '',
    browser_version  TEXT NOT NULL DEFAULT '',
    os_name          TEXT NOT NULL DEFAULT '',
    os_version       TEXT NOT NULL DEFAULT '',
    -- a JSON object: what else the type says (reason, by, role…)
    details          TEXT NOT NULL DEFAULT '{}'
);
-- Every listing is newest first by id; each index ends in the row id, so each one
-- serves its filter plus keyset paging: newest page (the table itself), one user's
-- events, one account's, one type (across accounts, and within one), and retention
-- and time bounds (`at`).
CREATE INDEX events_at ON events(at);
CREATE INDEX events_user ON events(user_id);
CREATE INDEX events_account ON events(account_id);
CREATE INDEX events_type ON events(type);
CREATE INDEX events_account_type ON events(account_id, type);

-- Webhooks (SPEC §15). `webhooks` mirrors the configured receivers (by URL) and the
-- event patterns each subscribes to, as a JSON array of GLOB patterns, so that
-- recording an event queues its deliveries in the same statement batch. Secrets stay
-- in the configuration, never here. A receiver removed from the configuration keeps
-- its row with no patterns.
CREATE TABLE webhooks (
    id      INTEGER PRIMARY KEY,
    url     TEXT NOT NULL UNIQUE,
    events  TEXT NOT NULL DEFAULT '[]'
);

-- The webhook outbox: one row per (receiver, event), delivered at least once, in order
-- per (receiver, user): `queue` is the event's user id (0 when it has none).
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id),
    event_id         INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    queue            INTEGER NOT NULL,
    -- the `webhook-id` header: the same on every attempt
    message_id       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries(webhook_id, queue, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);
CREATE INDEX webhook_deliveries_done ON webhook_deliveries(delivered_at) WHERE status = 'delivered';
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries(id) WHERE status = 'failed';
