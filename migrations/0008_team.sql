-- Team management (SPEC §11): invitations, password resets and email changes.
--
-- An invited user is a `users` row with `invited_at` set until the invitation is
-- accepted; their password is a random one nobody knows, so they cannot sign in.
ALTER TABLE users ADD COLUMN invited_at INTEGER;

-- Single-use links sent by email: `invite`, `reset` (a forgotten password) and `email`
-- (confirming a new address, kept in `new_email`). Only the SHA-256 of a link's secret
-- is stored. A link works while it is unused, not revoked and not expired.
CREATE TABLE links (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('invite', 'reset', 'email')),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    token_hash  BLOB NOT NULL UNIQUE,
    new_email   TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX links_user ON links(user_id, kind);
