-- The admin search's first step walks the most recent sessions and keeps those whose
-- user's email contains the search text. With the email in the listing index itself,
-- that walk reads index entries only, instead of one `users` row per session.
--
-- `sessions.email_lower` is the user's `users.email_lower`, written at sign-in and kept
-- in step for active sessions by the trigger below (ended sessions are never searched).
ALTER TABLE sessions ADD COLUMN email_lower TEXT NOT NULL DEFAULT '';
UPDATE sessions SET email_lower = (SELECT u.email_lower FROM users u WHERE u.id = sessions.user_id)
    WHERE ended_at IS NULL;
CREATE TRIGGER sessions_email_follows_user AFTER UPDATE OF email_lower ON users BEGIN
    UPDATE sessions SET email_lower = new.email_lower WHERE user_id = new.id AND ended_at IS NULL;
END;
DROP INDEX sessions_recent;
CREATE INDEX sessions_recent ON sessions(last_active_at DESC, id DESC, user_id, account_id, expires_at, application, email_lower) WHERE ended_at IS NULL;
