-- Locations you can trust and alerts people don't learn to ignore (SPEC §13, §14).

-- Where the GeoIP database puts a session's and a sign-in's address (for the travel
-- check; never shown), and the trusted network (`[[networks]]`) it came from, by name.
ALTER TABLE sessions ADD COLUMN latitude REAL;
ALTER TABLE sessions ADD COLUMN longitude REAL;
ALTER TABLE sessions ADD COLUMN accuracy_km INTEGER;
ALTER TABLE sessions ADD COLUMN network TEXT;
ALTER TABLE login_records ADD COLUMN latitude REAL;
ALTER TABLE login_records ADD COLUMN longitude REAL;
ALTER TABLE login_records ADD COLUMN accuracy_km INTEGER;
ALTER TABLE login_records ADD COLUMN network TEXT;

-- A live session used from another country than it signed in from: the latest such
-- place, written with the throttled activity write (NULL until it moves).
ALTER TABLE sessions ADD COLUMN moved_country_code TEXT;
ALTER TABLE sessions ADD COLUMN moved_country_name TEXT;
ALTER TABLE sessions ADD COLUMN moved_city TEXT;
ALTER TABLE sessions ADD COLUMN moved_at INTEGER;
-- Every country a session has moved to: one alert per session and country.
CREATE TABLE session_moves (
    session_id    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    country_code  TEXT NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (session_id, country_code)
) WITHOUT ROWID;

-- The reason an administrator gave for ending a session (shown to its person).
ALTER TABLE sessions ADD COLUMN end_note TEXT;

-- "Was this you?": when the person answered "Yes, it was me", or reported "No".
ALTER TABLE alerts ADD COLUMN confirmed_at INTEGER;
ALTER TABLE alerts ADD COLUMN reported_at INTEGER;

-- Which sign-in alerts a person gets (no row: all of them), and an account's lock that
-- keeps them all on for its people.
CREATE TABLE alert_preferences (
    user_id      INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    new_device   INTEGER NOT NULL DEFAULT 1,
    new_country  INTEGER NOT NULL DEFAULT 1,
    travel       INTEGER NOT NULL DEFAULT 1,
    moved        INTEGER NOT NULL DEFAULT 1
);
ALTER TABLE accounts ADD COLUMN alerts_locked INTEGER NOT NULL DEFAULT 0;
