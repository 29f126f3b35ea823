-- citywall schema version 2 (DuckDB): operations. Incidents and alarms are stored as their events,
-- never updated in place, so any past moment can be rebuilt (replay) and nothing an operator did is lost.
CREATE TABLE IF NOT EXISTS incident_events (
    seq BIGINT PRIMARY KEY, incident_id VARCHAR NOT NULL, event_time TIMESTAMPTZ NOT NULL, event VARCHAR NOT NULL,
    step VARCHAR, actor VARCHAR NOT NULL, note VARCHAR, data JSON,
    external VARCHAR);  -- '<source>:<the source's own id>' on the opening event: a case sent twice is opened once
CREATE TABLE IF NOT EXISTS alarm_events (
    seq BIGINT PRIMARY KEY, alarm_id VARCHAR NOT NULL, event_time TIMESTAMPTZ NOT NULL, event VARCHAR NOT NULL,
    actor VARCHAR NOT NULL, data JSON);
-- People and keys. Passwords and keys are stored only as hashes.
CREATE TABLE IF NOT EXISTS users (
    name VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, password_hash VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, disabled BOOLEAN NOT NULL DEFAULT false);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash VARCHAR PRIMARY KEY, user_name VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, role VARCHAR NOT NULL, key_hash VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, created_by VARCHAR NOT NULL, revoked_at TIMESTAMPTZ);
-- Append-only: who did what, when. Each row carries the hash of the one before (tamper-evident).
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY, logged_at TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL,
    target VARCHAR, detail JSON, prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL);
-- A source's own id is looked up for every case it sends (so a case sent twice is opened once).
CREATE INDEX IF NOT EXISTS incident_events_external ON incident_events (external);
