-- Ids are never given out twice (SPEC §19). Without AUTOINCREMENT, SQLite gives a new
-- row max(id) + 1, so after the newest user (alert, event, session) is deleted the next
-- one inherits its id: a deleted person's alert link would then act on someone else's
-- alert, and a new person would see a deleted one's events. Each table is rebuilt with
-- `INTEGER PRIMARY KEY AUTOINCREMENT` (SQLite's 12-step rebuild; the migration runs with
-- foreign keys off and is checked with `PRAGMA foreign_key_check` before it commits),
-- every column, default, check, reference and index as migrations 0001–0011 left them.
--
-- Also: a fourth kind of link, `email_cancel` (the old address cancels an email change),
-- and the key that bounds pending sign-in challenges per address or person.

-- The triggers on `users` name tables being rebuilt; they come back at the end.
DROP TRIGGER users_email_trigram_insert;
DROP TRIGGER users_email_trigram_delete;
DROP TRIGGER users_email_trigram_update;
DROP TRIGGER sessions_email_follows_user;

-- ---- users ----
CREATE TABLE users_new (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id             INTEGER NOT NULL REFERENCES accounts(id),
    email                  TEXT NOT NULL,
    -- lower-cased email: unique in the install, compared case-insensitively
    email_lower            TEXT NOT NULL UNIQUE,
    name                   TEXT NOT NULL,
    role                   TEXT NOT NULL CHECK (role IN ('user', 'admin', 'owner')),
    status                 TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash          TEXT NOT NULL,
    created_at             INTEGER NOT NULL,
    credentials_version    INTEGER NOT NULL DEFAULT 0,
    invited_at             INTEGER,
    require_second_factor  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO users_new (id, account_id, email, email_lower, name, role, status, password_hash,
        created_at, credentials_version, invited_at, require_second_factor)
    SELECT id, account_id, email, email_lower, name, role, status, password_hash,
        created_at, credentials_version, invited_at, require_second_factor
    FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_account ON users(account_id);
CREATE INDEX users_owners ON users(id) WHERE role = 'owner';

-- ---- sessions ----
CREATE TABLE sessions_new (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id           TEXT NOT NULL UNIQUE,
    -- SHA-256 of the secret token; the token itself is never stored
    token_hash          BLOB NOT NULL UNIQUE,
    user_id             INTEGER NOT NULL REFERENCES users(id),
    account_id          INTEGER NOT NULL REFERENCES accounts(id),
    application         TEXT NOT NULL,
    device_id           TEXT NOT NULL,
    user_agent          TEXT NOT NULL,
    device_category     TEXT NOT NULL,
    browser_name        TEXT NOT NULL,
    browser_version     TEXT NOT NULL,
    os_name             TEXT NOT NULL,
    os_version          TEXT NOT NULL,
    ip                  TEXT NOT NULL,
    country_code        TEXT,
    country_name        TEXT,
    city                TEXT,
    created_at          INTEGER NOT NULL,
    last_active_at      INTEGER NOT NULL,
    -- min(last_active_at + idle_timeout, created_at + max_lifetime), moved on each touch
    expires_at          INTEGER NOT NULL,
    ended_at            INTEGER,
    ended_by            INTEGER REFERENCES users(id) ON DELETE SET NULL,
    end_reason          TEXT,
    email_lower         TEXT NOT NULL DEFAULT '',
    applications_used   TEXT NOT NULL DEFAULT '[]',
    latitude            REAL,
    longitude           REAL,
    accuracy_km         INTEGER,
    network             TEXT,
    moved_country_code  TEXT,
    moved_country_name  TEXT,
    moved_city          TEXT,
    moved_at            INTEGER,
    end_note            TEXT,
    auth_methods        TEXT NOT NULL DEFAULT 'password',
    verified_at         INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sessions_new (id, public_id, token_hash, user_id, account_id, application,
        device_id, user_agent, device_category, browser_name, browser_version, os_name,
        os_version, ip, country_code, country_name, city, created_at, last_active_at,
        expires_at, ended_at, ended_by, end_reason, email_lower, applications_used, latitude,
        longitude, accuracy_km, network, moved_country_code, moved_country_name, moved_city,
        moved_at, end_note, auth_methods, verified_at)
    SELECT id, public_id, token_hash, user_id, account_id, application,
        device_id, user_agent, device_category, browser_name, browser_version, os_name,
        os_version, ip, country_code, country_name, city, created_at, last_active_at,
        expires_at, ended_at, ended_by, end_reason, email_lower, applications_used, latitude,
        longitude, accuracy_km, network, moved_country_code, moved_country_name, moved_city,
        moved_at, end_note, auth_methods, verified_at
    FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX sessions_account_active ON sessions(account_id, last_active_at DESC, id DESC) WHERE ended_at IS NULL;
CREATE INDEX sessions_expiry ON sessions(expires_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended ON sessions(ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_user_recent ON sessions(user_id, last_active_at DESC, id DESC, account_id, expires_at, application) WHERE ended_at IS NULL;
CREATE INDEX sessions_recent ON sessions(last_active_at DESC, id DESC, user_id, account_id, expires_at, application, email_lower) WHERE ended_at IS NULL;

-- ---- alerts ----
CREATE TABLE alerts_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
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
    link_used_at     INTEGER,
    confirmed_at     INTEGER,
    reported_at      INTEGER
);
INSERT INTO alerts_new (id, user_id, session_id, reasons, status, attempts, next_attempt_at,
        last_error, sent_at, created_at, held_back, reported_by, message_id, details,
        link_used_at, confirmed_at, reported_at)
    SELECT id, user_id, session_id, reasons, status, attempts, next_attempt_at,
        last_error, sent_at, created_at, held_back, reported_by, message_id, details,
        link_used_at, confirmed_at, reported_at
    FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_new RENAME TO alerts;
CREATE INDEX alerts_due ON alerts(next_attempt_at) WHERE status = 'pending';
CREATE INDEX alerts_user ON alerts(user_id, created_at);
CREATE INDEX alerts_created ON alerts(created_at);

-- ---- events ----
CREATE TABLE events_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO events_new (id, at, type, actor_id, user_id, account_id, session_id, ip,
        country_code, country_name, city, device_category, browser_name, browser_version,
        os_name, os_version, details)
    SELECT id, at, type, actor_id, user_id, account_id, session_id, ip,
        country_code, country_name, city, device_category, browser_name, browser_version,
        os_name, os_version, details
    FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_at ON events(at);
CREATE INDEX events_user ON events(user_id);
CREATE INDEX events_account ON events(account_id);
CREATE INDEX events_type ON events(type);
CREATE INDEX events_account_type ON events(account_id, type);

-- ---- links: `email_cancel`, the old address's "cancel this change" ----
CREATE TABLE links_new (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('invite', 'reset', 'email', 'email_cancel')),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    token_hash  BLOB NOT NULL UNIQUE,
    new_email   TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
INSERT INTO links_new (id, kind, user_id, token_hash, new_email, created_at, expires_at,
        used_at, revoked_at)
    SELECT id, kind, user_id, token_hash, new_email, created_at, expires_at, used_at, revoked_at
    FROM links;
DROP TABLE links;
ALTER TABLE links_new RENAME TO links;
CREATE INDEX links_user ON links(user_id, kind);

-- ---- the triggers, as 0003 and 0004 made them ----
CREATE TRIGGER users_email_trigram_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_email_trigram(rowid, email_lower) VALUES (new.id, new.email_lower);
END;
CREATE TRIGGER users_email_trigram_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_email_trigram(users_email_trigram, rowid, email_lower)
        VALUES ('delete', old.id, old.email_lower);
END;
CREATE TRIGGER users_email_trigram_update AFTER UPDATE OF email_lower ON users BEGIN
    INSERT INTO users_email_trigram(users_email_trigram, rowid, email_lower)
        VALUES ('delete', old.id, old.email_lower);
    INSERT INTO users_email_trigram(rowid, email_lower) VALUES (new.id, new.email_lower);
END;
CREATE TRIGGER sessions_email_follows_user AFTER UPDATE OF email_lower ON users BEGIN
    UPDATE sessions SET email_lower = new.email_lower WHERE user_id = new.id AND ended_at IS NULL;
END;

-- ---- where the counters start ----
-- At least the highest id in use, and above every id a deleted row left behind in
-- other tables (a deleted user's events, a deleted event's deliveries), so that none
-- of those is given out again.
DELETE FROM sqlite_sequence WHERE name IN ('users', 'sessions', 'alerts', 'events');
INSERT INTO sqlite_sequence (name, seq) VALUES
    ('users', max(
        (SELECT coalesce(max(id), 0) FROM users),
        (SELECT coalesce(max(user_id), 0) FROM events),
        (SELECT coalesce(max(actor_id), 0) FROM events),
        (SELECT coalesce(max(user_id), 0) FROM login_records),
        (SELECT coalesce(max(ended_by), 0) FROM sessions))),
    ('sessions', max(
        (SELECT coalesce(max(id), 0) FROM sessions),
        (SELECT coalesce(max(session_id), 0) FROM alerts))),
    ('alerts', max(
        (SELECT coalesce(max(id), 0) FROM alerts),
        (SELECT coalesce(max(reported_by), 0) FROM alerts),
        (SELECT coalesce(max(CAST(json_extract(details, '$.alert_id') AS INTEGER)), 0)
            FROM events WHERE type >= 'alert.' AND type < 'alert/' AND json_valid(details)))),
    ('events', max(
        (SELECT coalesce(max(id), 0) FROM events),
        (SELECT coalesce(max(event_id), 0) FROM webhook_deliveries)));

-- ---- pending sign-in challenges: whose budget each counts against ----
-- 'ip:<address or /64>' for a sign-in not yet signed in, 'user:<id>' for a ceremony of
-- a signed-in person; '' for rows from before (they expire within minutes).
ALTER TABLE login_challenges ADD COLUMN limit_key TEXT NOT NULL DEFAULT '';
CREATE INDEX login_challenges_limit ON login_challenges(purpose, limit_key, id);
CREATE INDEX login_challenges_purpose ON login_challenges(purpose, id);
