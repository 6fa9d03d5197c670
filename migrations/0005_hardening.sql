-- Credentials version: bumped whenever a user's password changes or the user is
-- disabled. A sign-in reads it with the password hash and re-checks it in the
-- transaction that inserts its session, so a sign-in racing a password change (or a
-- disable) never leaves a session signed in with the old credentials.
ALTER TABLE users ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 0;

-- The owners, for the rank rule of admin listings ("an admin never sees the owner's
-- sessions"): a handful of rows, found without reading every user.
CREATE INDEX users_owners ON users(id) WHERE role = 'owner';
