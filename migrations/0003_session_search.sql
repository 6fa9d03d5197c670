-- Fast admin search over many sessions (db/sessions.rs `list_admin`).
--
-- The two listing indexes that a search walks also carry the columns its filters test
-- (user, account, expiry, application), so a search reads index entries only and
-- fetches a session row just for the page it returns. Same leading columns as the
-- indexes they replace, so every other query keeps its plan.
DROP INDEX sessions_active;
CREATE INDEX sessions_recent ON sessions(last_active_at DESC, id DESC, user_id, account_id, expires_at, application) WHERE ended_at IS NULL;
DROP INDEX sessions_user_active;
CREATE INDEX sessions_user_recent ON sessions(user_id, last_active_at DESC, id DESC, account_id, expires_at, application) WHERE ended_at IS NULL;

-- "Email contains …": a trigram index of users.email_lower, so a search for a few
-- people finds them without reading every user. It only proposes candidates; the
-- exact LIKE on users.email_lower still decides.
CREATE VIRTUAL TABLE users_email_trigram USING fts5(
    email_lower, content = 'users', content_rowid = 'id', tokenize = 'trigram', detail = 'none'
);
INSERT INTO users_email_trigram(users_email_trigram) VALUES ('rebuild');
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
