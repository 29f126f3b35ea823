-- citywall schema version 1 (DuckDB): registry, observations, quarantine, hourly rollups.
-- Timestamps are UTC (TIMESTAMPTZ, microseconds). Statements are idempotent, so a store that
-- was created before versioned migrations (which ran all of them at every open) migrates cleanly.
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS things (
    id INTEGER PRIMARY KEY, key VARCHAR UNIQUE NOT NULL, name VARCHAR, kind VARCHAR,
    lon DOUBLE, lat DOUBLE, gu VARCHAR, dong VARCHAR, simulated BOOLEAN, properties JSON);
CREATE TABLE IF NOT EXISTS datastreams (
    id INTEGER PRIMARY KEY, key VARCHAR UNIQUE NOT NULL, thing_id INTEGER, quantity VARCHAR,
    unit VARCHAR, name VARCHAR, sentinels DOUBLE[], interval_s DOUBLE);
-- One row per accepted HTTP call, MQTT message or feed batch: who sent what, when.
CREATE TABLE IF NOT EXISTS batches (
    id BIGINT, received_at TIMESTAMPTZ, source VARCHAR, accepted INTEGER, rejected INTEGER);
CREATE TABLE IF NOT EXISTS observations (
    datastream_id INTEGER NOT NULL, phenomenon_time TIMESTAMPTZ NOT NULL, result DOUBLE NOT NULL,
    batch_id BIGINT NOT NULL);
-- Everything refused, with the reason, kept for inspection.
CREATE TABLE IF NOT EXISTS quarantine (
    batch_id BIGINT, row_index INTEGER, received_at TIMESTAMPTZ, source VARCHAR, reason VARCHAR,
    detail VARCHAR, datastream VARCHAR, phenomenon_time VARCHAR, result VARCHAR, payload VARCHAR);
-- Hourly downsampling of observations: kept after raw rows pass the retention window.
CREATE TABLE IF NOT EXISTS observations_hourly (
    datastream_id INTEGER, hour TIMESTAMPTZ, n INTEGER, mean DOUBLE, min DOUBLE, max DOUBLE,
    last DOUBLE, last_time TIMESTAMPTZ);
