-- The protected applications each session has been verified for (SPEC §16), with the
-- last time for each: a JSON array of {"name", "last_used_at"}, written by the verify
-- endpoints at most once per touch interval per application. Kept on the session row
-- so that the session check and every listing read it with the session, at no extra
-- lookup.
ALTER TABLE sessions ADD COLUMN applications_used TEXT NOT NULL DEFAULT '[]';
