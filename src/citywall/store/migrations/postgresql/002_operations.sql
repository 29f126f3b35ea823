-- citywall schema version 2 (PostgreSQL): operations (incident and alarm events, users, sessions,
-- API keys, the audit log). Event seqs come from sequences, so several processes can append.
CREATE TABLE IF NOT EXISTS incident_events (
    seq BIGINT PRIMARY KEY, incident_id TEXT NOT NULL, event_time TIMESTAMPTZ NOT NULL, event TEXT NOT NULL,
    step TEXT, actor TEXT NOT NULL, note TEXT, data TEXT, external TEXT);
CREATE SEQUENCE IF NOT EXISTS incident_events_seq;
SELECT setval('incident_events_seq', coalesce((SELECT max(seq) FROM incident_events), 0) + 1, false);
CREATE TABLE IF NOT EXISTS alarm_events (
    seq BIGINT PRIMARY KEY, alarm_id TEXT NOT NULL, event_time TIMESTAMPTZ NOT NULL, event TEXT NOT NULL,
    actor TEXT NOT NULL, data TEXT);
CREATE SEQUENCE IF NOT EXISTS alarm_events_seq;
SELECT setval('alarm_events_seq', coalesce((SELECT max(seq) FROM alarm_events), 0) + 1, false);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, disabled BOOLEAN NOT NULL DEFAULT false);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, key_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, created_by TEXT NOT NULL, revoked_at TIMESTAMPTZ);
-- Append-only hash chain; appends are serialised across processes with an advisory lock (AuditLog).
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY, logged_at TIMESTAMPTZ NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT, detail TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS incident_events_external ON incident_events (external);
CREATE INDEX IF NOT EXISTS incident_events_id ON incident_events (incident_id);
CREATE INDEX IF NOT EXISTS alarm_events_id ON alarm_events (alarm_id);
