-- citywall schema version 1 (PostgreSQL): registry, observations, quarantine, hourly rollups.
-- The same tables and columns as the DuckDB store. JSON columns are TEXT: what was written reads
-- back byte for byte (the audit chain hashes it), where jsonb would reorder and normalise it.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS things (
    id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, name TEXT, kind TEXT,
    lon DOUBLE PRECISION, lat DOUBLE PRECISION, gu TEXT, dong TEXT, simulated BOOLEAN, properties TEXT);
CREATE TABLE IF NOT EXISTS datastreams (
    id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, thing_id INTEGER, quantity TEXT,
    unit TEXT, name TEXT, sentinels DOUBLE PRECISION[], interval_s DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS batches (
    id BIGINT, received_at TIMESTAMPTZ, source TEXT, accepted INTEGER, rejected INTEGER);
-- Several processes take batch ids from one database: a sequence, never max(id) + 1.
CREATE SEQUENCE IF NOT EXISTS batch_id_seq;
SELECT setval('batch_id_seq', coalesce((SELECT max(id) FROM batches), 0) + 1, false);
CREATE TABLE IF NOT EXISTS observations (
    datastream_id INTEGER NOT NULL, phenomenon_time TIMESTAMPTZ NOT NULL, result DOUBLE PRECISION NOT NULL,
    batch_id BIGINT NOT NULL);
-- DuckDB finds a datastream's rows by zone maps over compacted row groups; PostgreSQL by this index
-- (history, the duplicate check for late data, and the newest value of each datastream at start).
CREATE INDEX IF NOT EXISTS observations_ds_time ON observations (datastream_id, phenomenon_time);
-- Rollup, retention and replay select by time across all datastreams: a BRIN index is tiny for
-- rows that arrive in time order.
CREATE INDEX IF NOT EXISTS observations_time ON observations USING brin (phenomenon_time);
CREATE INDEX IF NOT EXISTS observations_batch ON observations USING brin (batch_id);
CREATE TABLE IF NOT EXISTS quarantine (
    batch_id BIGINT, row_index INTEGER, received_at TIMESTAMPTZ, source TEXT, reason TEXT,
    detail TEXT, datastream TEXT, phenomenon_time TEXT, result TEXT, payload TEXT);
CREATE INDEX IF NOT EXISTS quarantine_received ON quarantine (received_at);
CREATE TABLE IF NOT EXISTS observations_hourly (
    datastream_id INTEGER, hour TIMESTAMPTZ, n INTEGER, mean DOUBLE PRECISION, min DOUBLE PRECISION,
    max DOUBLE PRECISION, last DOUBLE PRECISION, last_time TIMESTAMPTZ);
CREATE INDEX IF NOT EXISTS observations_hourly_ds_hour ON observations_hourly (datastream_id, hour);
-- DuckDB's time functions under their DuckDB names, so SQL shared by both stores (accounts, audit,
-- events) runs unchanged. Exact to the microsecond (no floating point).
CREATE OR REPLACE FUNCTION make_timestamptz(us BIGINT) RETURNS TIMESTAMPTZ
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN TIMESTAMPTZ 'epoch' + us * INTERVAL '1 microsecond';
CREATE OR REPLACE FUNCTION epoch_us(t TIMESTAMPTZ) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (extract(epoch FROM t) * 1000000)::BIGINT;
CREATE OR REPLACE FUNCTION epoch_ms(t TIMESTAMPTZ) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN floor(extract(epoch FROM t) * 1000)::BIGINT;
