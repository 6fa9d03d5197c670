-- SPEC §20: Doorman as an OpenID Provider.

-- The keys id tokens are signed with (the private key as DER; the database file is 0600).
-- A key signs from `active_from`; a rotation publishes a new key at once, lets it sign
-- after `oidc.key_publish_delay`, and sets the old key's `retired_at` to that moment; the
-- old key stays in the JWKS for the tokens' lifetimes after it.
CREATE TABLE oidc_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kid          TEXT NOT NULL UNIQUE,
    alg          TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256')),
    private_der  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    active_from  INTEGER NOT NULL,
    retired_at   INTEGER
);

-- What one Doorman session gave one client: the tokens hang from it, and it ends with
-- the session (the trigger below). §21 adds the logout tokens of ended grants.
CREATE TABLE oidc_grants (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL,
    -- the application's name when the grant was made, for the listings
    application   TEXT NOT NULL,
    -- the session's public id, as the id tokens carry it
    sid           TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    ended_at      INTEGER,
    -- session_ended, code_reused, refresh_reused, revoked
    end_reason    TEXT
);
CREATE INDEX oidc_grants_session ON oidc_grants(session_id);

-- Authorization codes: single use, 60 s, stored as SHA-256 hashes, bound to the client,
-- the redirect URI and the PKCE challenge. `grant_id` is set when the code is exchanged,
-- so that a second use can end what the first one gave.
CREATE TABLE oidc_codes (
    code_hash       BLOB PRIMARY KEY,
    session_id      INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT,
    nonce           TEXT,
    scopes          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,
    grant_id        INTEGER REFERENCES oidc_grants(id) ON DELETE CASCADE
);
CREATE INDEX oidc_codes_session ON oidc_codes(session_id);
CREATE INDEX oidc_codes_expiry ON oidc_codes(expires_at);

-- Access and refresh tokens, as SHA-256 hashes. A refresh token is rotated on use
-- (`used_at` set, a new one issued); a second use ends its grant.
CREATE TABLE oidc_tokens (
    token_hash  BLOB PRIMARY KEY,
    grant_id    INTEGER NOT NULL REFERENCES oidc_grants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    used_at     INTEGER
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens(grant_id);

-- "Grafana wants your name and email", answered once per person and client.
CREATE TABLE oidc_consents (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    given_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Ending a session, by any path (sign-out, Terminate, an admin's end, a password
-- change, disable, expiry…), ends its grants (and so, by the next trigger, their tokens)
-- and deletes its codes, in the transaction that ends it: no path can forget it.
CREATE TRIGGER sessions_end_oidc_grants AFTER UPDATE OF ended_at ON sessions
WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
BEGIN
    UPDATE oidc_grants SET ended_at = NEW.ended_at, end_reason = 'session_ended'
        WHERE session_id = NEW.id AND ended_at IS NULL;
    DELETE FROM oidc_codes WHERE session_id = NEW.id;
END;

-- A grant that ends (with its session, or alone: a reused code or refresh token, a
-- revocation) loses its tokens at once.
CREATE TRIGGER oidc_grant_end_tokens AFTER UPDATE OF ended_at ON oidc_grants
WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
BEGIN
    DELETE FROM oidc_tokens WHERE grant_id = NEW.id;
END;
