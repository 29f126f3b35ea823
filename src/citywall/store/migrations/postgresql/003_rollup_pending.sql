-- citywall schema version 3 (PostgreSQL): hours to roll up again, recorded by the commit that wrote late
-- rows into them. With several processes, batch ids are taken before their commit, so "rows of batches
-- above the last rollup's highest batch id" (the DuckDB store's test) misses a batch with a lower id that
-- commits after a rollup; each commit now names the rolled-up hours it touched, under a shared lock that
-- the rollup takes exclusively.
CREATE TABLE IF NOT EXISTS rollup_pending (hour TIMESTAMPTZ PRIMARY KEY);
