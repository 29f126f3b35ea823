"""Prometheus metrics of the platform, in one place so their names stay consistent."""

from prometheus_client import Counter, Gauge, Histogram

ACCEPTED = Counter("citywall_observations_accepted_total", "Observations stored", ["source"])
REJECTED = Counter("citywall_observations_rejected_total", "Observations quarantined", ["reason"])
COMMIT_SECONDS = Histogram(
    "citywall_commit_seconds", "Time to validate and commit one group of batches",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
GROUP_ROWS = Histogram("citywall_commit_rows", "Rows per group commit", buckets=(1, 10, 100, 1000, 10_000, 100_000, 1_000_000))
QUEUE_DEPTH = Gauge("citywall_ingest_queue_depth", "Batches waiting for the writer")
WS_CLIENTS = Gauge("citywall_live_clients", "Connected live WebSocket clients")
WS_RESYNCS = Counter("citywall_live_resyncs_total", "Slow live clients sent a fresh snapshot instead of a backlog")
DATASTREAMS = Gauge("citywall_datastreams", "Registered datastreams")
STALE = Gauge("citywall_stale_datastreams", "Datastreams whose newest value is older than 3 intervals")
