"""The single writer under the conditions that once broke it."""

from __future__ import annotations

import threading

import numpy as np

from citywall.ingest.batch import ObservationBatch
from conftest import FIXED_NOW_US, MINUTE_US, THINGS_FOR_PIPELINE, obs, post, register, running


def test_a_cancelled_ingest_does_not_kill_the_writer(db):
    """A sender that gives up (its future cancelled before the writer takes it) is dropped, unstored,
    and the writer goes on serving everyone else."""
    with running(db, now_us=FIXED_NOW_US) as (platform, client, _):
        ds = register(client, THINGS_FOR_PIPELINE)["p:pm10"]
        gate = threading.Event()
        blocker = platform.pipeline.call(gate.wait)  # hold the writer busy
        batch = ObservationBatch(ds=np.array([ds]), t_us=np.array([FIXED_NOW_US - MINUTE_US]), value=np.array([10.0]), source="test")
        abandoned = platform.pipeline.submit(batch)
        assert abandoned.cancel()
        gate.set()
        blocker.result(10)
        assert platform.pipeline.alive
        res = post(client, [obs(ds, FIXED_NOW_US - MINUTE_US, 11.0)])
        assert res["accepted"] == 1  # the abandoned row was never stored, so this is not a duplicate
        assert client.get("/api/health").json()["writer_alive"] is True


def test_refused_input_is_kept_for_the_retention_window_then_dropped(db):
    with running(db, now_us=FIXED_NOW_US) as (platform, client, clock):
        register(client, THINGS_FOR_PIPELINE)
        post(client, [obs("nope", FIXED_NOW_US - MINUTE_US, 1.0)])
        platform.pipeline.rollup(30, None).result(10)
        assert client.get("/api/quarantine").json()["counts"] == {"unknown_datastream": 1}
        clock.advance(31 * 86400 * 1_000_000)
        out = platform.pipeline.rollup(30, None).result(10)
        assert out["quarantine"] == 1
        assert client.get("/api/quarantine").json()["counts"] == {}
