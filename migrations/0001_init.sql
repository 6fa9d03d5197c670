-- Accounts (tenants), their users, sessions, devices and the sign-in history.
-- Times are Unix seconds (UTC).

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    email          TEXT NOT NULL,
    -- lower-cased email: unique in the install, compared case-insensitively
    email_lower    TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('user', 'admin', 'owner')),
    status         TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX users_account ON users(account_id);

CREATE TABLE sessions (
    id               INTEGER PRIMARY KEY,
    public_id        TEXT NOT NULL UNIQUE,
    -- SHA-256 of the secret token; the token itself is never stored
    token_hash       BLOB NOT NULL UNIQUE,
    user_id          INTEGER NOT NULL REFERENCES users(id),
    account_id       INTEGER NOT NULL REFERENCES accounts(id),
    application      TEXT NOT NULL,
    device_id        TEXT NOT NULL,
    user_agent       TEXT NOT NULL,
    device_category  TEXT NOT NULL,
    browser_name     TEXT NOT NULL,
    browser_version  TEXT NOT NULL,
    os_name          TEXT NOT NULL,
    os_version       TEXT NOT NULL,
    ip               TEXT NOT NULL,
    country_code     TEXT,
    country_name     TEXT,
    city             TEXT,
    created_at       INTEGER NOT NULL,
    last_active_at   INTEGER NOT NULL,
    -- min(last_active_at + idle_timeout, created_at + max_lifetime), moved on each touch
    expires_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    ended_by         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    end_reason       TEXT
);
-- Listing indexes cover only live rows, so ended rows kept for audit cost nothing.
CREATE INDEX sessions_user_active ON sessions(user_id, last_active_at DESC, id DESC) WHERE ended_at IS NULL;
CREATE INDEX sessions_account_active ON sessions(account_id, last_active_at DESC, id DESC) WHERE ended_at IS NULL;
CREATE INDEX sessions_active ON sessions(last_active_at DESC, id DESC) WHERE ended_at IS NULL;
CREATE INDEX sessions_expiry ON sessions(expires_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended ON sessions(ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE devices (
    user_id     INTEGER NOT NULL REFERENCES users(id),
    device_id   TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;

CREATE TABLE login_records (
    id               INTEGER PRIMARY KEY,
    at               INTEGER NOT NULL,
    email            TEXT NOT NULL,
    user_id          INTEGER REFERENCES users(id),
    ip               TEXT NOT NULL,
    country_code     TEXT,
    country_name     TEXT,
    city             TEXT,
    device_id        TEXT,
    user_agent       TEXT NOT NULL,
    device_category  TEXT NOT NULL,
    browser_name     TEXT NOT NULL,
    browser_version  TEXT NOT NULL,
    os_name          TEXT NOT NULL,
    os_version       TEXT NOT NULL,
    success          INTEGER NOT NULL,
    reason           TEXT NOT NULL
);
CREATE INDEX login_records_user ON login_records(user_id, id DESC);
CREATE INDEX login_records_user_country ON login_records(user_id, country_code) WHERE success = 1;
