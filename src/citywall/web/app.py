"""The HTTP and WebSocket API (FastAPI), over the platform's public methods.

Handlers stay thin: parse, call the platform, encode. The wall page (a later issue) uses
exactly these endpoints, like any integrator.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import prometheus_client
from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from citywall import __version__
from citywall.city.geojson import geojson_bytes
from citywall.ingest.batch import PayloadError, decode_json
from citywall.ingest.pipeline import WriterStopped
from citywall.live.hub import RESYNC
from citywall.observations.model import ThingIn
from citywall.observations.registry import RegistryError
from citywall.auth.access import Principal, require
from citywall.platform import Platform
from citywall.web import auth_api, operations_api
from citywall.analytics.owlbus import api as owlbus_api
from citywall.analytics.commerce import api as commerce_api
from citywall.sensorthings import api as sensorthings_api, ngsi_ld
from citywall.web.params import parse_moment_us, parse_time_us

JSON = "application/json"
GEOJSON = "application/geo+json"
MAX_HISTORY_POINTS = 200_000
STATIC = Path(__file__).parent / "static"


def _json(obj: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(obj), status_code=status, media_type=JSON)


def _time(value: str | None, default: datetime) -> int:
    """Microseconds since the epoch from ISO 8601 or epoch milliseconds."""
    return int(default.timestamp() * 1e6) if value is None else parse_time_us(value)


def create_app(platform: Platform) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        await platform.start()
        yield
        await platform.stop()

    app = FastAPI(
        title="citywall",
        version=__version__,
        summary="The live city platform of a digital mayor's office",
        lifespan=lifespan,
    )
    app.state.platform = platform
    city = platform.city

    # -- the city -------------------------------------------------------------------------
    @app.get("/api/city", tags=["city"], summary="The city: name, time zone, bounds, regions")
    def get_city() -> Response:
        return _json(city.summary())

    @app.get("/api/city/districts", tags=["city"], summary="The districts (gu) as GeoJSON")
    def get_districts() -> Response:
        return Response(geojson_bytes(city, "gu"), media_type=GEOJSON)

    @app.get("/api/city/dongs", tags=["city"], summary="The legal dongs as GeoJSON, optionally of one gu")
    def get_dongs(gu: str | None = None) -> Response:
        if gu is not None and gu not in city.districts:
            raise HTTPException(404, f"no district {gu!r}")
        return Response(geojson_bytes(city, "dong", gu), media_type=GEOJSON)

    # -- things and datastreams -----------------------------------------------------------
    @app.get("/api/things", tags=["registry"], summary="Registered Things with their place")
    def get_things(kind: str | None = None) -> Response:
        return _json([t for t in list(platform.registry.things.values()) if kind is None or t.kind == kind])

    @app.post("/api/things", tags=["registry"], summary="Register Things and their Datastreams (idempotent by key); needs a feed API key or an operator")
    async def post_things(request: Request, who: Annotated[Principal, Depends(require("feed"))]) -> Response:
        try:
            things = msgspec.json.decode(await request.body(), type=list[ThingIn])
        except msgspec.DecodeError as exc:
            raise HTTPException(422, f"expected a JSON array of Things: {exc}") from None
        try:
            new_things, new_ds = await platform.register(things)
        except RegistryError as exc:
            raise HTTPException(422, str(exc)) from None
        reg = platform.registry
        keys = {d.key or f"{t.key}:{d.quantity}" for t in things for d in t.datastreams}
        return _json({"created_things": len(new_things), "created_datastreams": len(new_ds),
                      "datastreams": {k: reg.ds_by_key[k] for k in sorted(keys) if k in reg.ds_by_key}})

    @app.get("/api/datastreams", tags=["registry"], summary="Registered Datastreams with quantity, unit and place")
    def get_datastreams(quantity: str | None = None, gu: str | None = None, kind: str | None = None) -> Response:
        reg = platform.registry
        ids = reg.select(quantity=quantity, gu=gu, kind=kind)
        out = []
        for i in ids:
            d = reg.datastreams[i]
            t = reg.things[d.thing_id]
            out.append({"id": d.id, "key": d.key, "name": d.name, "quantity": d.quantity, "unit": d.unit, "interval_s": d.interval_s,
                        "thing": t.key, "kind": t.kind, "lon": t.lon, "lat": t.lat, "gu": t.gu, "dong": t.dong, "simulated": t.simulated})
        return _json(out)

    @app.get("/api/registry", tags=["registry"], summary="Every Thing and Datastream as compact columns (for live clients)")
    def get_registry() -> Response:
        """What a client mirroring the live picture needs to name and place each datastream id of the
        snapshot and deltas, in one small document (the full `/api/datastreams` list is ~20x larger)."""
        reg = platform.registry
        # Datastreams first: a Thing is registered before its Datastreams, so every one listed has its Thing.
        datastreams = list(reg.datastreams.values())
        things = list(reg.things.values())
        return _json({
            "things": {"id": [t.id for t in things], "key": [t.key for t in things], "name": [t.name for t in things],
                       "kind": [t.kind for t in things], "lon": [t.lon for t in things], "lat": [t.lat for t in things],
                       "gu": [t.gu for t in things], "dong": [t.dong for t in things], "simulated": [t.simulated for t in things]},
            "datastreams": {"id": [d.id for d in datastreams], "thing": [d.thing_id for d in datastreams],
                            "quantity": [d.quantity for d in datastreams], "interval_s": [d.interval_s for d in datastreams]},
        })

    @app.get("/api/quantities", tags=["registry"], summary="Observed properties, units and plausible ranges")
    def get_quantities() -> Response:
        return _json({q.code: {"name": {"ko": q.name_ko, "en": q.name_en}, "unit": q.unit.__dict__, "range": [q.low, q.high],
                               "domain": q.domain, "other_units": sorted(q.conversions)} for q in platform.registry.quantities.values()})

    # -- observations ---------------------------------------------------------------------
    @app.post(
        "/api/observations",
        tags=["observations"],
        summary="Ingest a JSON array of observations",
        description=(
            "Each item: `datastream` (id or key), `phenomenonTime` (ISO 8601 with offset), `result` (number), "
            "optional `unit`. The response comes after the accepted rows are committed: an acknowledged row survives "
            "a crash. Refused rows are listed with a reason and kept in the quarantine. Needs a feed API key "
            "(`X-API-Key`) or an operator's session."
        ),
    )
    async def post_observations(
        request: Request,
        who: Annotated[Principal, Depends(require("feed"))],
        source: Annotated[str, Query(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="who sends: kept with each batch and in metrics")] = "api",
    ) -> Response:
        body = await request.body()
        try:
            batch = decode_json(body, platform.registry, source) if len(body) < 65536 else await asyncio.to_thread(decode_json, body, platform.registry, source)
        except PayloadError as exc:
            batch_id = await asyncio.wrap_future(platform.pipeline.quarantine_payload(body, source, "malformed", str(exc)))
            return _json({"error": str(exc), "reason": "malformed", "batch_id": batch_id}, 400)
        try:
            result = await platform.ingest(batch)
        except Exception as exc:  # the store refused the commit: nothing was acknowledged
            return _json({"error": f"not stored, retry: {exc}"}, 503)
        return _json(result)

    @app.get("/api/quarantine", tags=["observations"], summary="Refused input, newest first, with the reason")
    def get_quarantine(reason: str | None = None, source: str | None = None, limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> Response:
        return _json({"counts": platform.store.quarantine_counts(), "items": platform.store.quarantined(reason=reason, source=source, limit=limit)})

    @app.get("/api/snapshot", tags=["live"], summary="The current city picture: newest values, aggregates, freshness")
    async def get_snapshot() -> Response:
        return Response(platform.snapshots.get(), media_type=JSON)

    @app.get("/api/history", tags=["observations"], summary="A time series for a datastream or a place")
    def get_history(
        datastream: str | None = Query(None, description="datastream id or key; or give quantity and a place"),
        quantity: str | None = None,
        gu: str | None = None,
        dong: str | None = None,
        region: str | None = None,
        kind: str | None = Query(None, description="thing kind, e.g. air_station or sdot"),
        start: str | None = Query(None, description="ISO 8601 or epoch ms; default end - 24 h"),
        end: str | None = Query(None, description="ISO 8601 or epoch ms; default now"),
        resolution: Literal["raw", "minute", "hour", "day"] = "hour",
        aggregate: Literal["mean", "min", "max", "last"] = "mean",
    ) -> Response:
        reg = platform.registry
        now = datetime.fromtimestamp(platform.clock.now(), timezone.utc)
        end_us = _time(end, now)
        start_us = _time(start, datetime.fromtimestamp(end_us / 1e6, timezone.utc) - timedelta(days=1))
        if start_us >= end_us:
            raise HTTPException(400, "start must be before end")
        if datastream is not None:
            ids = [int(x) for x in reg.resolve([int(datastream) if datastream.isdigit() else datastream]) if x > 0]
            if not ids:
                raise HTTPException(404, f"no datastream {datastream!r}")
            what: dict[str, Any] = {"datastream": ids[0], "quantity": reg.datastreams[ids[0]].quantity}
        else:
            if quantity is None or quantity not in reg.quantities:
                raise HTTPException(400, "give a datastream, or a known quantity with an optional gu, dong, region or kind")
            for name, value, known in (("gu", gu, city.districts), ("dong", dong, city.dongs), ("region", region, city.regions)):
                if value is not None and value not in known:
                    raise HTTPException(404, f"no {name} {value!r}")
            if resolution == "raw":
                raise HTTPException(400, "raw resolution is for one datastream; use minute, hour or day for a place")
            ids = reg.select(quantity=quantity, gu=gu, dong=dong, region=region, kind=kind)
            what = {"quantity": quantity, "gu": gu, "dong": dong, "region": region, "kind": kind, "datastreams": len(ids)}
        unit = reg.quantities[what["quantity"]].unit.symbol
        series = platform.store.history(ids, start_us, end_us, resolution, aggregate, city.timezone)
        if len(series["t"]) > MAX_HISTORY_POINTS:
            raise HTTPException(413, f"{len(series['t'])} points; narrow the range or coarsen the resolution")
        return _json({**what, "unit": unit, "resolution": resolution, "aggregate": aggregate,
                      "start_ms": start_us // 1000, "end_ms": end_us // 1000, **series})

    @app.get("/api/air", tags=["live"], summary="The live CAI of each air station, district, region and the city (or the US EPA AQI)")
    async def get_air(index: Literal["cai", "aqi"] = Query("cai", description="cai: Korea's CAI (what the wall shows); aqi: the US EPA AQI (2024)"),
                      at: str | None = Query(None, description="a past moment (ISO 8601 or epoch ms); default now")) -> Response:
        if index == "cai" and at is None:
            return _json(platform.air.latest)
        t_us = platform.clock.now_us() if at is None else parse_moment_us(at)
        return _json(await asyncio.to_thread(platform.air.compute, t_us, index))

    @app.get("/api/hotspots/forecast", tags=["live"], summary="The newest crowding forecast of each hotspot, as its source gave it (Seoul citydata: 12 hours)")
    def get_hotspot_forecast() -> Response:
        # Forecasts describe future hours: not observations (the store holds what was measured), so the
        # feeds that read them keep the newest in memory and this gathers them.
        places: dict[str, Any] = {}
        for feed in platform.feeds:
            forecasts = getattr(feed, "forecasts", None)
            if callable(forecasts):
                places |= {code: {**fc, "feed": feed.name, "simulated": feed.simulated} for code, fc in forecasts().items()}
        return _json({"places": places})

    @app.get("/api/indicators", tags=["city"], summary="The city's key indicators: target, actual, trend")
    def get_indicators() -> Response:
        return _json(platform.indicators.as_dict())

    app.include_router(auth_api.router)
    app.include_router(operations_api.router)
    app.include_router(sensorthings_api.router)
    app.include_router(ngsi_ld.router)
    app.include_router(owlbus_api.router)
    app.include_router(commerce_api.router)

    # -- the wall page --------------------------------------------------------------------
    app.mount("/static", RevalidatedStaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def get_wall() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    # -- operations -----------------------------------------------------------------------
    @app.get("/api/health", tags=["operations"], summary="Is the platform up, and is its data fresh")
    def get_health() -> Response:
        p = platform
        writer = p.pipeline.alive
        body = {"status": "ok" if writer else "degraded", "version": __version__, "city": city.id, "store": p.store.path,
                "store_status": p.pipeline.store_status(), "live_broker": p.broker.status() if p.broker else None,
                "writer_alive": writer, "queue_depth": p.pipeline._queue.qsize(), "speed": p.clock.speed,
                "simulated": p.simulated, "feeds": p.feed_status(), "freshness": p.live.freshness(p.clock.now_us()),
                "datastreams": len(p.registry.datastreams), "live_clients": len(p.hub.subscribers)}
        return _json(body, 200 if writer else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=PlainTextResponse)
    def get_metrics() -> Response:
        from citywall import metrics

        p = platform
        freshness = p.live.freshness(p.clock.now_us())
        metrics.STALE.set(sum(f["stale"] for f in freshness.values()))
        return Response(prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

    @app.websocket("/api/live")
    async def live(ws: WebSocket) -> None:
        """A snapshot on connect, then `delta` (newest values) and `aggregates` messages."""
        await ws.accept()
        sub = platform.hub.subscribe()
        try:
            await ws.send_text(platform.snapshots.get(current=True).decode())
            reader = asyncio.create_task(_drain(ws))
            while not reader.done():
                getter = asyncio.create_task(sub.queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                message = getter.result()
                await ws.send_text((platform.snapshots.get(current=True) if message == RESYNC else message).decode())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            platform.hub.unsubscribe(sub)

    @app.exception_handler(WriterStopped)
    async def writer_stopped(request: Request, exc: WriterStopped) -> JSONResponse:
        return JSONResponse({"detail": f"not stored, retry: {exc}"}, 503)

    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, exc: RegistryError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    return app


class RevalidatedStaticFiles(StaticFiles):
    """The page's files, revalidated on every load (a 304 when unchanged), so that after an upgrade
    a wall never runs a new index.html with old cached modules."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) client messages so a closed socket is noticed."""
    try:
        while True:
            await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
