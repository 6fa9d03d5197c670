-- SPEC §22: the person's time zone (an IANA name such as "Europe/Berlin"; empty: not
-- known). Emails show their times in it as well as in UTC. The Profile page fills it
-- from the browser's.
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';
