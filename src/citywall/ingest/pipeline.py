"""The single writer: every batch is validated, stored and applied to the live state here.

All writes go through one thread (as in Datasette): batches that queue up while a commit
runs are validated and committed together, so a burst costs one transaction, and the
sender's future resolves only after the commit, which is what makes an acknowledgement
safe against a `kill -9`. Subscribers hear about a change only after it is durable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from citywall import metrics
from citywall.clock import Clock
from citywall.ingest.batch import ObservationBatch
from citywall.ingest.validate import Limits, validate
from citywall.live.bus import OBSERVATIONS_COMMITTED, REGISTRY_CHANGED, Committed, EventBus
from citywall.live.state import LiveState
from citywall.observations.model import Datastream, Thing, ThingIn
from citywall.observations.registry import Registry
from citywall.store import Store
from citywall.store.embedded import HOUR_US, OBSERVATION_SCHEMA, QUARANTINE_SCHEMA, RegistryMoved, Write

log = logging.getLogger(__name__)
REGISTER_ATTEMPTS = 5  # plans of one registration, when other processes sharing the store keep registering too


class WriterStopped(RuntimeError):
    """The writer thread is not running, so nothing can be stored."""


class Rejection(msgspec.Struct):
    index: int
    reason: str
    detail: str


class IngestResult(msgspec.Struct):
    batch_id: int
    accepted: int
    rejected: list[Rejection]


@dataclass
class _Ingest:
    batch: ObservationBatch
    future: Future = field(default_factory=Future)


@dataclass
class _Call:
    fn: Callable[[], Any]
    future: Future = field(default_factory=Future)


class Pipeline:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        live: LiveState,
        bus: EventBus,
        clock: Clock,
        limits: Limits | None = None,
        max_group_rows: int = 250_000,
    ) -> None:
        self.store, self.registry, self.live, self.bus, self.clock = store, registry, live, bus, clock
        self.limits = limits or Limits()
        self.max_group_rows = max_group_rows
        self._queue: queue.Queue[_Ingest | _Call | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._raw_from = 0  # rows before this were deleted by retention: refused as too old
        # The last commit's outcome, for /api/health: a database away (PostgreSQL restarting) shows here.
        self.store_error: str | None = None
        self.store_down_since: str | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Load the registry and live state from the store, then start the writer."""
        things, datastreams = self.store.load_registry()
        self.registry.add(things, datastreams)
        latest = self.store.latest()
        if len(latest["ds"]):
            self.live.apply(latest["ds"].astype(np.int64), latest["t"].astype(np.int64), latest["v"])
        self._raw_from = int(self.store.get_meta("raw_from_us") or 0)
        metrics.DATASTREAMS.set(len(self.registry.datastreams))
        self._thread = threading.Thread(target=self._run, name="citywall-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    # -- requests -----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _enqueue(self, job: _Ingest | _Call) -> None:
        if not self.alive:
            job.future.set_exception(WriterStopped("the writer is not running; nothing was stored"))
            return
        self._queue.put(job)

    def store_status(self) -> dict[str, Any]:
        """"ok", or "down" since the first of the commits failing now, with the error."""
        return {"state": "down" if self.store_error else "ok", "error": self.store_error, "down_since": self.store_down_since}

    def submit(self, batch: ObservationBatch) -> Future[IngestResult]:
        """Queue a batch; the future resolves once it is committed (or fails)."""
        job = _Ingest(batch)
        self._enqueue(job)
        metrics.QUEUE_DEPTH.set(self._queue.qsize())
        return job.future

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run `fn` on the writer thread (registration, rollups: anything that writes)."""
        job = _Call(fn)
        self._enqueue(job)
        return job.future

    def register(self, things: list[ThingIn]) -> Future[tuple[list[Thing], list[Datastream]]]:
        def run() -> tuple[list[Thing], list[Datastream]]:
            for attempt in range(REGISTER_ATTEMPTS):
                new_things, new_ds = self.registry.plan(things)
                try:
                    self.store.save_registry(new_things, new_ds)
                    break
                except RegistryMoved:  # another process sharing the store registered meanwhile: learn its ids, plan again
                    if attempt == REGISTER_ATTEMPTS - 1:
                        raise
                    self._sync_registry()
            self.registry.add(new_things, new_ds)
            metrics.DATASTREAMS.set(len(self.registry.datastreams))
            if new_things or new_ds:
                self.bus.fire_threadsafe(REGISTRY_CHANGED, (new_things, new_ds))
            return new_things, new_ds

        return self.call(run)

    def sync_registry(self) -> Future[tuple[list[Thing], list[Datastream]]]:
        """Add the Things and Datastreams other processes sharing the store registered since (on the writer thread)."""
        return self.call(self._sync_registry)

    def _sync_registry(self) -> tuple[list[Thing], list[Datastream]]:
        after = (max(self.registry.things, default=0), max(self.registry.datastreams, default=0))
        things, datastreams = self.store.load_registry(after=after)
        self.registry.add(things, datastreams)
        metrics.DATASTREAMS.set(len(self.registry.datastreams))
        return things, datastreams

    def quarantine_payload(self, body: bytes, source: str, reason: str, detail: str) -> Future[int]:
        """Keep a payload that could not be read as observations at all."""

        def run() -> int:
            batch_id = self._take_batch_id()
            now = self.clock.now_us()
            table = pa.Table.from_pylist(
                [{"batch_id": batch_id, "row_index": -1, "received_at": now, "source": source, "reason": reason, "detail": detail,
                  "datastream": None, "phenomenon_time": None, "result": None, "payload": body[:1_000_000].decode("utf-8", "replace")}],
                schema=QUARANTINE_SCHEMA,
            )
            self.store.write(Write(OBSERVATION_SCHEMA.empty_table(), table, [(batch_id, now, source, 0, 1)]))
            metrics.REJECTED.labels(reason).inc()
            return batch_id

        return self.call(run)

    def rollup(self, raw_days: float | None, hourly_days: float | None) -> Future[dict[str, int]]:
        """Downsample complete hours and apply retention, on the writer thread."""

        def run() -> dict[str, int]:
            now = self.clock.now_us()
            out = {"watermark_us": self.store.rollup(now - HOUR_US)}
            if raw_days is not None:
                out |= self.store.retain(now - int(raw_days * 86400e6), None if hourly_days is None else now - int(hourly_days * 86400e6))
                self._raw_from = int(self.store.get_meta("raw_from_us") or 0)
            return out

        return self.call(run)

    # -- the writer ---------------------------------------------------------------------
    def _take_batch_id(self) -> int:
        # From the store (a sequence on PostgreSQL), as several processes may write one database.
        return self.store.take_ids("batches", 1)[0]

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException:
            log.exception("the writer thread died")
            raise
        finally:
            # Whatever is still queued will never be written: say so instead of leaving it waiting.
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None and job.future.set_running_or_notify_cancel():
                    job.future.set_exception(WriterStopped("the writer stopped; nothing was stored"))

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            # A future cancelled before the writer takes it (the sender gave up) is dropped:
            # nothing was acknowledged. Once taken, it can no longer be cancelled.
            if not job.future.set_running_or_notify_cancel():
                continue
            if isinstance(job, _Call):
                self._do_call(job)
                continue
            group, rows = [job], len(job.batch)
            while rows < self.max_group_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit(group)
                    return
                if not nxt.future.set_running_or_notify_cancel():
                    continue
                if isinstance(nxt, _Call):
                    self._commit(group)
                    group, rows = [], 0
                    self._do_call(nxt)
                    continue
                group.append(nxt)
                rows += len(nxt.batch)
            self._commit(group)
            metrics.QUEUE_DEPTH.set(self._queue.qsize())

    def _do_call(self, job: _Call) -> None:
        try:
            job.future.set_result(job.fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            job.future.set_exception(exc)

    def _commit(self, group: list[_Ingest]) -> None:
        if not group:
            return
        started = time.perf_counter()
        try:
            results, committed = self._validate_and_write([j.batch for j in group])
        except BaseException as exc:  # noqa: BLE001 - nothing is acknowledged
            log.exception("commit failed; %d batches not acknowledged", len(group))
            self.store_error = f"{type(exc).__name__}: {exc}".strip()
            self.store_down_since = self.store_down_since or datetime.now(timezone.utc).isoformat(timespec="seconds")
            for j in group:
                j.future.set_exception(exc)
            return
        self.store_error = self.store_down_since = None
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        for j, result in zip(group, results):
            j.future.set_result(result)
        self.bus.fire_threadsafe(OBSERVATIONS_COMMITTED, committed)

    def _validate_and_write(self, batches: list[ObservationBatch]) -> tuple[list[IngestResult], Committed]:
        now = self.clock.now_us()
        merged = _concat(batches)
        last_t = self.live.newest_times()
        if self.store.shared:
            # Other processes write this store too, and this one hears of their rows late or not at all (a
            # client retrying through a load balancer reaches another process): any row may be stored
            # already, so every row is looked up, not only those older than this process's newest.
            last_t = np.full_like(last_t, np.iinfo(np.int64).max)
        verdict = validate(merged, self.registry, last_t, now, self.limits, self.store.existing, self._raw_from)
        sizes = [len(b) for b in batches]
        offsets = np.cumsum([0, *sizes])
        batch_ids = self.store.take_ids("batches", len(batches))
        row_batch = np.repeat(np.array(batch_ids, dtype=np.int64), sizes)
        ok = verdict.accepted
        acc = np.flatnonzero(ok)
        obs = pa.Table.from_arrays(
            [
                pa.array(merged.ds[acc].astype(np.int32)),
                pa.array(merged.t_us[acc], pa.timestamp("us", tz="UTC")),
                pa.array(verdict.value[acc]),
                pa.array(row_batch[acc]),
            ],
            schema=OBSERVATION_SCHEMA,
        )
        rej = np.flatnonzero(~ok)
        results = [IngestResult(bid, 0, []) for bid in batch_ids]
        qrows = []
        which = np.searchsorted(offsets, rej, side="right") - 1
        for i, b in zip(rej.tolist(), which.tolist()):
            batch, local = batches[b], i - int(offsets[b])
            reason, detail = str(verdict.reason[i]), str(verdict.detail[i])
            results[b].rejected.append(Rejection(local, reason, detail))
            ref = batch.refs[local] if batch.refs is not None else int(batch.ds[local])
            qrows.append({
                "batch_id": batch_ids[b], "row_index": local, "received_at": now, "source": batch.source, "reason": reason, "detail": detail,
                "datastream": str(ref), "phenomenon_time": str(int(batch.t_us[local])), "result": repr(float(batch.value[local])), "payload": batch.payload(local),
            })
        for b, r in enumerate(results):
            r.accepted = sizes[b] - len(r.rejected)
        quarantine = pa.Table.from_pylist(qrows, schema=QUARANTINE_SCHEMA) if qrows else QUARANTINE_SCHEMA.empty_table()
        self.store.write(Write(obs, quarantine, [(bid, now, b.source, r.accepted, len(r.rejected)) for bid, b, r in zip(batch_ids, batches, results)]))

        changed = self.live.apply(merged.ds[acc], merged.t_us[acc], verdict.value[acc])
        for b, r in zip(batches, results):
            if r.accepted:
                metrics.ACCEPTED.labels(b.source).inc(r.accepted)
        for q in qrows:
            metrics.REJECTED.labels(q["reason"]).inc()
        sources = tuple(sorted({b.source for b in batches}))
        return results, Committed(changed, len(acc), len(rej), sources, (merged.ds[acc], merged.t_us[acc], verdict.value[acc]))


def _concat(batches: list[ObservationBatch]) -> ObservationBatch:
    if len(batches) == 1:
        return batches[0]

    def cat(attr: str, fill: Any) -> np.ndarray | None:
        parts = [getattr(b, attr) for b in batches]
        if all(p is None for p in parts):
            return None
        return np.concatenate([p if p is not None else np.full(len(b), fill, dtype=object) for p, b in zip(parts, batches)])

    refs = None
    if any(b.refs is not None for b in batches):
        refs = [r for b in batches for r in (b.refs if b.refs is not None else b.ds.tolist())]
    return ObservationBatch(
        ds=np.concatenate([b.ds for b in batches]),
        t_us=np.concatenate([b.t_us for b in batches]),
        value=np.concatenate([b.value for b in batches]),
        unit=cat("unit", None),
        pre_reason=cat("pre_reason", None),
        pre_detail=cat("pre_detail", None),
        refs=refs,
        extra={"starts": np.cumsum([0, *(len(b) for b in batches[:-1])]).tolist()},
    )
