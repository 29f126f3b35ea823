"""The SensorThings API v1.1 over HTTP: `/sta/v1.1/...` read with the query options, and
Observations created (POST) through the same pipeline as every other input.

One catch-all route per method parses the resource path itself (`Things(1)/Datastreams`,
`Observations('5-1749958200000000')/FeatureOfInterest`, `Things(1)/name/$value`): the
standard's paths nest arbitrarily, which fixed routes cannot express.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from citywall.auth.access import Principal, require
from citywall.ingest.batch import PayloadError
from citywall.platform import Platform
from citywall.sensorthings import sql
from citywall.sensorthings.entities import NAV, SETS, Catalog, Key, ObservationRow, observation_id, parse_observation_id
from citywall.sensorthings.observations import decode_observations
from citywall.sensorthings.query import Options, QueryError, parse_options

PREFIX = "/sta/v1.1"
JSON = "application/json"
SOURCE = "sta"
LINK_SAFE = "$(),;/='"  # kept readable in nextLinks: OData's own punctuation
# Entities in one answer, expansions included: $top is at most 10,000 at every level, so without a
# bound on the whole, Things?$top=10000&$expand=Datastreams($top=10000;$expand=Observations($top=10000))
# would try to build one answer of the whole store in memory. Past it the answer is refused (400).
MAX_ENTITIES = 200_000
CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
]
NOT_IMPLEMENTED = ["HistoricalLocations are always empty (no moves are kept)", "create, update and delete of entities other than Observations",
                   "batch requests", "dataArray ($resultFormat)", "geospatial $filter functions (st_*)"]

SINGULAR = {"Things": "Thing", "Locations": "Location", "HistoricalLocations": "HistoricalLocation", "Datastreams": "Datastream", "Sensors": "Sensor",
            "ObservedProperties": "ObservedProperty", "Observations": "Observation", "FeaturesOfInterest": "FeatureOfInterest"}

router = APIRouter(tags=["sensorthings"])


class NotFound(LookupError):
    pass


class StaError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(obj), status_code=status, media_type=JSON, headers=headers)


def _error(status: int, message: str) -> Response:
    return _json({"code": status, "type": "error", "message": message}, status)


_catalogs: weakref.WeakKeyDictionary[Any, Catalog] = weakref.WeakKeyDictionary()


def _catalog(platform: Platform) -> Catalog:
    """One Catalog per registry: its indexes are rebuilt only when the registry grows."""
    cat = _catalogs.get(platform.registry)
    if cat is None:
        cat = _catalogs[platform.registry] = Catalog(platform.registry)
    return cat


# -- resource paths -----------------------------------------------------------------------------
_SEGMENT = re.compile(r"^([A-Za-z$]+)(?:\((?:(\d+)|'((?:[^']|'')*)')\))?$")


def _segments(path: str) -> list[tuple[str, Key | None]]:
    out: list[tuple[str, Key | None]] = []
    for raw in [s for s in path.strip("/").split("/") if s]:
        m = _SEGMENT.match(raw)
        if m is None:
            raise StaError(400, f"cannot read the path segment {raw!r} (expected Name, Name(1) or Name('id'))")
        key: Key | None = int(m.group(2)) if m.group(2) is not None else (m.group(3).replace("''", "'") if m.group(3) is not None else None)
        out.append((m.group(1), key))
    return out


def _key_text(key: Key) -> str:
    return str(key) if isinstance(key, int) else "'" + quote(key.replace("'", "''"), safe="-_.~") + "'"


@dataclass
class Target:
    """Where a resource path leads: an entity, a collection (maybe below a parent), or a property."""

    set: str
    key: Key | None = None
    row: ObservationRow | None = None
    parent: tuple[str, Key, ObservationRow | None] | None = None
    nav: str | None = None  # the navigation property from the parent
    prop: str | None = None
    raw: bool = False  # $value
    ref: bool = False  # $ref


class Reader:
    """One GET: the platform, the base URL and the catalog."""

    def __init__(self, platform: Platform, base: str) -> None:
        self.platform = platform
        self.base = base
        self.cat = _catalog(platform)
        self.rendered = 0  # entities in this answer so far (MAX_ENTITIES)

    def _spend(self, n: int) -> None:
        self.rendered += n
        if self.rendered > MAX_ENTITIES:
            raise QueryError(f"the answer would hold more than {MAX_ENTITIES:,} entities; use a smaller $top (in $expand too) "
                             "and follow the @iot.nextLink")

    @property
    def db(self) -> Any:
        """The store's reader for this thread (opened on first use: rendering alone needs none)."""
        return self.platform.store.reader()

    # -- resolving a path ------------------------------------------------------------------------
    def entity(self, set_name: str, key: Key) -> ObservationRow | None:
        """Check an entity exists (NotFound if not); for an Observation, its row."""
        if set_name == "Observations":
            try:
                ds, t_us = parse_observation_id(key)
            except QueryError:
                raise NotFound(f"no Observation {key!r}") from None
            value = sql.exists(self.db, ds, t_us)
            if value is None:
                raise NotFound(f"no Observation {key!r}")
            return (ds, t_us, value)
        if not self.cat.exists(set_name, key):
            raise NotFound(f"no {SINGULAR[set_name]} {key!r}")
        return None

    def resolve(self, path: str) -> Target:
        segs = _segments(path)
        name, key = segs[0]
        if name not in SETS:
            raise NotFound(f"no entity set {name!r}; the sets are {', '.join(SETS)}")
        t = Target(name, key)
        if key is not None:
            t.row = self.entity(name, key)
        for name, key in segs[1:]:
            if t.prop is not None:
                if name == "$value" and key is None and not t.raw:
                    t.raw = True
                    continue
                raise StaError(400, f"nothing follows a property but $value (found {name!r})")
            if name == "$ref" and key is None:
                t.ref = True
                continue
            if t.ref:
                raise StaError(400, "nothing follows $ref")
            if t.key is None:
                raise StaError(400, f"{t.set} is a collection: name one entity, e.g. {t.set}(1), before {name!r}")
            if name in NAV[t.set]:
                target, to_one = NAV[t.set][name]
                if to_one:
                    keys = self.cat.related(t.set, t.key, name, t.row)
                    if not keys:
                        raise NotFound(f"{t.set}({t.key!r}) has no {name}")
                    if key is not None:
                        raise StaError(400, f"{name} is a single entity; it takes no id")
                    t = Target(target, keys[0])
                    t.row = self.entity(target, keys[0])
                else:
                    parent = (t.set, t.key, t.row)
                    t = Target(target, None, None, parent, name)
                    if key is not None:
                        t.row = self.entity(target, key)
                        if not self._member(parent, name, target, key, t.row):
                            raise NotFound(f"{target}({key!r}) is not one of {parent[0]}({parent[1]!r})/{name}")
                        t = Target(target, key, t.row)
                continue
            props = self.cat.props(t.set, t.key, t.row) if t.set != "Observations" or t.row else {}
            if name in props and key is None:
                t.prop = name
                continue
            raise NotFound(f"{t.set} have no property or navigation {name!r}")
        return t

    def _member(self, parent: tuple[str, Key, ObservationRow | None], nav: str, target: str, key: Key, row: ObservationRow | None) -> bool:
        if target == "Observations":
            return row is not None and row[0] in self.cat.datastreams_of(parent[0], parent[1])
        return key in self.cat.related(parent[0], parent[1], nav, parent[2])

    # -- rendering --------------------------------------------------------------------------------
    def self_link(self, set_name: str, key: Key) -> str:
        return f"{self.base}/{set_name}({_key_text(key)})"

    def render(self, set_name: str, key: Key, row: ObservationRow | None, opts: Options) -> dict[str, Any]:
        self._spend(1)
        props = self.cat.props(set_name, key, row)
        link = self.self_link(set_name, key)
        out: dict[str, Any] = {"@iot.id": props.pop("@iot.id"), "@iot.selfLink": link, **props}
        for nav in NAV[set_name]:
            out[f"{nav}@iot.navigationLink"] = f"{link}/{nav}"
        if opts.select is not None:
            keep = set(opts.select) | set(opts.expand)
            if "id" in keep:
                keep.add("@iot.id")
            unknown = [s for s in opts.select if s not in out and s != "id" and s not in NAV[set_name]]
            if unknown:
                raise QueryError(f"$select: {set_name} have no {', '.join(map(repr, unknown))}")
            out = {k: v for k, v in out.items() if k in keep or k.split("@")[0] in keep and k.endswith("navigationLink")}
        return out

    def render_many(self, set_name: str, items: list[tuple[Key, ObservationRow | None]], opts: Options) -> list[dict[str, Any]]:
        docs = [self.render(set_name, k, r, opts) for k, r in items]
        for nav, sub in opts.expand.items():
            if nav not in NAV[set_name]:
                raise QueryError(f"$expand: {set_name} have no navigation property {nav!r}; they have {', '.join(NAV[set_name])}")
            self.expand(set_name, items, docs, nav, sub)
        return docs

    def expand(self, set_name: str, items: list[tuple[Key, ObservationRow | None]], docs: list[dict[str, Any]], nav: str, opts: Options) -> None:
        target, to_one = NAV[set_name][nav]
        if target != "Observations":
            # Page each parent's children, then render every child of this level at once, so the
            # next level (e.g. their Observations) is one query for all of them, not one per parent.
            pages: list[tuple[list[Key], dict[str, Any]]] = []
            for k, r in items:
                keys = self.cat.related(set_name, k, nav, r)
                pages.append((keys[:1], {}) if to_one else self._page(target, keys, opts, f"{self.self_link(set_name, k)}/{nav}"))
            children = self.render_many(target, [(c, None) for keys, _ in pages for c in keys], opts)
            at = 0
            for (keys, meta), doc in zip(pages, docs):
                chunk, at = children[at: at + len(keys)], at + len(keys)
                if to_one:
                    doc[nav] = chunk[0] if chunk else None
                    continue
                doc[nav] = chunk
                doc.update({f"{nav}{name}": value for name, value in meta.items()})
            return
        if set_name == "Datastreams":
            # One query for the Observations of every Datastream listed.
            ids = [int(k) for k, _ in items]
            where, params = self._where(opts, ids)
            order = sql.order_sql(opts.orderby)
            room = MAX_ENTITIES - self.rendered + 1  # one more than fits: enough to know the answer is too big
            rows = sql.select_per_datastream(self.db, ids, where, params, order, opts.top + 1, opts.skip, room + len(ids)) if opts.top else {}
            if sum(min(len(r), opts.top) for r in rows.values()) >= room:
                self._spend(room)  # refused before rendering
            counts = sql.count_per_datastream(self.db, ids, where, params) if opts.count else {}
            for (k, _), doc in zip(items, docs):
                got = rows.get(int(k), [])
                doc[nav] = self.render_many("Observations", [(observation_id(r[0], r[1]), r) for r in got[: opts.top]], opts)
                if opts.count:
                    doc[f"{nav}@iot.count"] = counts.get(int(k), 0)
                if len(got) > opts.top:
                    doc[f"{nav}@iot.nextLink"] = self._next(f"{self.self_link(set_name, k)}/{nav}", opts, inner=True)
            return
        for (k, _), doc in zip(items, docs):
            page = self.observations(self.cat.datastreams_of(set_name, k), opts, f"{self.self_link(set_name, k)}/{nav}")
            doc[nav] = page["value"]
            for extra in ("@iot.count", "@iot.nextLink"):
                if extra in page:
                    doc[f"{nav}{extra}"] = page[extra]

    def _next(self, url: str, opts: Options, *, inner: bool = False, query: list[tuple[str, str]] | None = None) -> str:
        """The link to the next page: the same request with $skip moved on by $top."""
        params = [(k, v) for k, v in (query or []) if k not in ("$skip", "$top")]
        if inner:  # an expanded collection's link carries its own options
            params = list(opts_query(opts))
        params += [("$top", str(opts.top)), ("$skip", str(opts.skip + opts.top))]
        return f"{url}?{urlencode(params, quote_via=quote, safe=LINK_SAFE)}"

    # -- collections ------------------------------------------------------------------------------
    def _page(self, set_name: str, keys: list[Key], opts: Options, url: str, query: list[tuple[str, str]] | None = None) -> tuple[list[Key], dict[str, Any]]:
        """An in-memory set filtered, ordered and paged: the keys of the page, and its
        @iot.count and @iot.nextLink when they apply."""
        cat = self.cat
        if opts.filter is not None:
            keys = [k for k in keys if cat.matches(opts.filter, set_name, k)]
        else:
            keys = list(keys)
        for path, desc in reversed(opts.orderby):
            keys.sort(key=lambda k, p=path: cat.sort_key(set_name, k, p), reverse=desc)
        meta: dict[str, Any] = {}
        if opts.count:
            meta["@iot.count"] = len(keys)
        if opts.top and opts.skip + opts.top < len(keys):
            meta["@iot.nextLink"] = self._next(url, opts, query=query, inner=query is None)
        return keys[opts.skip: opts.skip + opts.top], meta

    def collection(self, set_name: str, keys: list[Key], opts: Options, url: str, query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """An in-memory set: filter, order, count, page, render."""
        page, meta = self._page(set_name, keys, opts, url, query)
        out: dict[str, Any] = {}
        if "@iot.count" in meta:
            out["@iot.count"] = meta["@iot.count"]
        out["value"] = self.render_many(set_name, [(k, None) for k in page], opts)
        if "@iot.nextLink" in meta:
            out["@iot.nextLink"] = meta["@iot.nextLink"]
        return out

    def _where(self, opts: Options, datastreams: list[int] | None) -> tuple[str, list[Any]]:
        if opts.filter is None:
            return "TRUE", []
        return sql.compile_filter(opts.filter, self.cat, datastreams)

    def observations(self, datastreams: list[int] | None, opts: Options, url: str, query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """Observations from the store, the options pushed down into SQL."""
        where, params = self._where(opts, datastreams)
        order = sql.order_sql(opts.orderby)
        rows = sql.select(self.db, datastreams, where, params, order, opts.top + 1, opts.skip) if opts.top else []
        out: dict[str, Any] = {}
        if opts.count:
            out["@iot.count"] = sql.count(self.db, datastreams, where, params)
        out["value"] = self.render_many("Observations", [(observation_id(r[0], r[1]), r) for r in rows[: opts.top]], opts)
        if len(rows) > opts.top:
            out["@iot.nextLink"] = self._next(url, opts, query=query, inner=query is None)
        return out

    # -- one request ------------------------------------------------------------------------------
    def get(self, path: str, query: list[tuple[str, str]]) -> Response:
        names = [k for k, _ in query]
        dup = {k for k in names if names.count(k) > 1 and k.startswith("$")}
        if dup:
            raise QueryError(f"the query option {sorted(dup)[0]} is given more than once")
        opts = parse_options(dict(query))
        t = self.resolve(path)
        if t.prop is not None:
            value = self.cat.props(t.set, t.key, t.row)[t.prop]  # type: ignore[arg-type]
            if t.raw:
                text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
                return Response(text, media_type="text/plain")
            return _json({t.prop: value})
        url = f"{self.base}/{path.strip('/')}"
        if t.key is not None:
            if t.ref:
                return _json({"@iot.selfLink": self.self_link(t.set, t.key)})
            return _json(self.render_many(t.set, [(t.key, t.row)], opts)[0])
        if t.set == "Observations":
            datastreams = self.cat.datastreams_of(t.parent[0], t.parent[1]) if t.parent else None
            page = self.observations(datastreams, opts, url, query)
        else:
            keys = self.cat.related(*t.parent[:2], t.nav, t.parent[2]) if t.parent else self.cat.keys(t.set)  # type: ignore[misc]
            page = self.collection(t.set, list(keys), opts, url, query)
        if t.ref:
            page["value"] = [{"@iot.selfLink": d["@iot.selfLink"]} for d in page["value"]]
        return _json(page)


def opts_query(opts: Options) -> list[tuple[str, str]]:
    """An expanded collection's own options (as written in its parentheses), for its nextLink."""
    return [(k, v) for k, v in opts.raw.items() if k not in ("$top", "$skip")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


MQTT_CREATE = "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation"


@router.get(PREFIX, summary="SensorThings service root: the entity sets and the server's conformance")
def service_root(request: Request) -> Response:
    base = _base(request)
    settings: dict[str, Any] = {"conformance": list(CONFORMANCE)}
    # With MQTT ingest on, Observations can also be created on v1.1/Datastreams(id)/Observations (mqtt/).
    mqtt = next((f for f in request.app.state.platform.feeds if f.name == "mqtt"), None)
    if mqtt is not None:
        settings["conformance"].append(MQTT_CREATE)
        settings["mqtt"] = {"endpoints": [mqtt.status().get("broker")]}
    settings["citywall"] = {"creates": ["Observations"], "not_implemented": NOT_IMPLEMENTED}
    return _json({"value": [{"name": s, "url": f"{base}/{s}"} for s in SETS], "serverSettings": settings})


@router.get(PREFIX + "/{path:path}", summary="SensorThings entities, collections and properties with $filter, $orderby, $top, $skip, $count, $select, $expand")
def read(path: str, request: Request) -> Response:
    if not path.strip("/"):
        return service_root(request)
    try:
        return Reader(request.app.state.platform, _base(request)).get(path, list(request.query_params.multi_items()))
    except QueryError as exc:
        return _error(400, str(exc))
    except StaError as exc:
        return _error(exc.status, str(exc))
    except NotFound as exc:
        return _error(404, str(exc.args[0]) if exc.args else "not found")


@router.post(PREFIX + "/Observations", status_code=201,
             summary="Create an Observation (naming its Datastream); needs a feed API key")
async def create(request: Request, who: Annotated[Principal, Depends(require("feed"))]) -> Response:
    return await _create(request, None)


@router.post(PREFIX + "/Datastreams({datastream_id})/Observations", status_code=201,
             summary="Create an Observation of this Datastream; needs a feed API key")
async def create_in_datastream(datastream_id: str, request: Request, who: Annotated[Principal, Depends(require("feed"))]) -> Response:
    if not datastream_id.isdigit():
        return _error(404, f"no Datastream {datastream_id!r} (Datastream ids are integers)")
    return await _create(request, int(datastream_id))


async def _create(request: Request, datastream: int | None) -> Response:
    """Decode, ingest (the answer waits for the commit), and answer as the standard says: 201 with
    the new entity's Location; refused input 400 with the reason, and kept in the quarantine."""
    platform: Platform = request.app.state.platform
    body = await request.body()
    now_us = platform.clock.now_us()
    try:
        batch = (decode_observations(body, platform.registry, SOURCE, datastream=datastream, now_us=now_us) if len(body) < 65536 else
                 await asyncio.to_thread(decode_observations, body, platform.registry, SOURCE, datastream=datastream, now_us=now_us))
    except PayloadError as exc:
        batch_id = await asyncio.wrap_future(platform.pipeline.quarantine_payload(body, SOURCE, "malformed", str(exc)))
        return _json({"code": 400, "type": "error", "message": str(exc), "reason": "malformed", "batch_id": batch_id}, 400)
    try:
        result = await platform.ingest(batch)
    except Exception as exc:  # the store refused the commit: nothing was acknowledged
        return _error(503, f"not stored, retry: {exc}")
    base = _base(request)
    refused = {r.index: r for r in result.rejected}
    created = [observation_id(int(batch.ds[i]), int(batch.t_us[i])) for i in range(len(batch)) if i not in refused]
    reader = Reader(platform, base)
    single = body.lstrip()[:1] != b"["
    if single:
        if refused:
            r = refused[0]
            return _json({"code": 400, "type": "error", "message": r.detail, "reason": r.reason, "batch_id": result.batch_id}, 400)
        key = created[0]
        ds, t_us = parse_observation_id(key)
        doc = reader.render("Observations", key, (ds, t_us, float(batch.value[0])), Options())
        return _json(doc, 201, {"Location": doc["@iot.selfLink"]})
    body_out = {"batch_id": result.batch_id, "created": [reader.self_link("Observations", k) for k in created],
                "rejected": [{"index": r.index, "reason": r.reason, "message": r.detail} for r in result.rejected]}
    return _json(body_out, 400 if not created and refused else 201 if not refused else 200)
