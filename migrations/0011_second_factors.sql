-- Second factors and "confirm it's you" (SPEC §12).

-- An authenticator app (TOTP) or a passkey / security key (WebAuthn) of a user. A TOTP
-- factor is inactive until one correct code has been entered; `last_step` is the time
-- step of the last code it accepted, so that each code is accepted once.
CREATE TABLE second_factors (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id),
    kind           TEXT NOT NULL CHECK (kind IN ('totp', 'passkey')),
    name           TEXT NOT NULL,
    -- TOTP: the shared key (it must be read back to check codes, so it cannot be hashed)
    secret         BLOB,
    -- WebAuthn: the credential id and the credential as webauthn-rs keeps it (JSON)
    credential_id  BLOB,
    credential     TEXT,
    active         INTEGER NOT NULL DEFAULT 0,
    last_step      INTEGER,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
);
CREATE INDEX second_factors_user ON second_factors(user_id);
CREATE UNIQUE INDEX second_factors_credential ON second_factors(credential_id)
    WHERE credential_id IS NOT NULL;

-- Single-use recovery codes, only their SHA-256 (keyed with the user id).
CREATE TABLE recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users(id),
    code_hash  BLOB NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- A sign-in between its password and its second step (or its enrolment), and WebAuthn
-- ceremonies in progress. No session exists until the second step succeeds. Only the
-- SHA-256 of the challenge token is kept; the browser holds the token in a cookie.
CREATE TABLE login_challenges (
    id                   INTEGER PRIMARY KEY,
    token_hash           BLOB NOT NULL UNIQUE,
    purpose              TEXT NOT NULL,
    user_id              INTEGER REFERENCES users(id),
    credentials_version  INTEGER NOT NULL DEFAULT 0,
    application          TEXT NOT NULL DEFAULT '',
    device_id            TEXT NOT NULL DEFAULT '',
    target               TEXT NOT NULL DEFAULT '',
    -- the inactive TOTP factor an enrolment shows
    factor_id            INTEGER,
    -- a WebAuthn ceremony's state (webauthn-rs JSON)
    state                TEXT,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL
);
CREATE INDEX login_challenges_expiry ON login_challenges(expires_at);

-- How each session was signed in ("password,totp"), and when it last confirmed it was
-- its person (the sign-in, or a later step-up).
ALTER TABLE sessions ADD COLUMN auth_methods TEXT NOT NULL DEFAULT 'password';
ALTER TABLE sessions ADD COLUMN verified_at INTEGER NOT NULL DEFAULT 0;

-- "Require a second factor": for one person, and for everyone in an account.
ALTER TABLE users ADD COLUMN require_second_factor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN require_second_factor INTEGER NOT NULL DEFAULT 0;
