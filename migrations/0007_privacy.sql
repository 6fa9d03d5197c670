-- Retention (SPEC §17): the sweeper deletes alerts by age and forgets devices not seen
-- for a long time, a batch at a time; these indexes find each batch without reading
-- the whole table.
CREATE INDEX alerts_created ON alerts(created_at);
CREATE INDEX devices_last_seen ON devices(last_seen);
