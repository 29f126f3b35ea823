"""Observation ingest: decoding, validation and the single-writer pipeline."""
