"""Observations read from the store: $filter, $orderby, $top and $skip pushed down into SQL.

Everything SQL the SensorThings API runs is in this module, a handful of plain statements over
the `observations` table (datastream_id, phenomenon_time, result) with parameters, never values
built into the text, so that another store needs only this file looked at. They run unchanged on
the PostgreSQL store (store/postgres.py turns `?` into `%s` and defines `epoch_us`); the tests
run them on both.

A filter term that reads only the Observation's Datastream or FeatureOfInterest (e.g.
`Datastream/ObservedProperty/@iot.id eq 'pm10'`) is evaluated over the registry in Python and
becomes `datastream_id = ANY(?)`: the registry, not the table, knows those properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from citywall.sensorthings.entities import Catalog, parse_observation_id
from citywall.sensorthings.query import Binary, Call, Literal, Not, Path, QueryError, parse_time, paths_of

EPOCH_US = "epoch_us(phenomenon_time)"  # DuckDB's; the PostgreSQL store defines a function of that name too
COLUMNS = {"result": "result", "phenomenonTime": "phenomenon_time"}
OWN = {"result", "phenomenonTime", "resultTime", "@iot.id", "id", "parameters", "resultQuality", "validTime"}
SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}
NAVS = ("Datastream", "FeatureOfInterest")
ARITH = ("add", "sub", "mul", "div", "mod")
DATASTREAM_ID = (("Datastream", "@iot.id"), ("Datastream", "id"))
FLIP = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}


@dataclass
class Where:
    """A WHERE clause being built: SQL text with `?` placeholders and their values in order."""

    terms: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, sql: str, *params: Any) -> None:
        self.terms.append(sql)
        self.params.extend(params)

    @property
    def sql(self) -> str:
        return " AND ".join(f"({t})" for t in self.terms) if self.terms else "TRUE"


def _is_nav_only(node: Any) -> bool:
    paths = paths_of(node)
    return bool(paths) and all(p.parts[0] in NAVS and len(p.parts) > 1 for p in paths)


def compile_filter(node: Any, catalog: Catalog, datastreams: list[int] | None) -> tuple[str, list[Any]]:
    """SQL and parameters for a $filter over Observations. `datastreams` bounds the ids a
    navigation term is evaluated on (the navigation path's Datastreams, or all)."""
    params: list[Any] = []

    def value(n: Any) -> str:
        if isinstance(n, Literal):
            if n.value is None:
                return "NULL"
            params.append(n.value)
            return "?"
        if isinstance(n, Path):
            name = n.parts[0]
            if len(n.parts) != 1 or name not in COLUMNS:
                if name in ("resultTime", "validTime", "parameters", "resultQuality"):
                    raise QueryError(f"$filter: Observations here have no {name} (it is not recorded); filter on phenomenonTime or result")
                if name in ("@iot.id", "id"):
                    raise QueryError("$filter: compare an Observation's @iot.id only with eq, ne, gt, ge, lt or le and a literal id")
                raise QueryError(f"$filter: Observations have no property {n}; use result, phenomenonTime, @iot.id, "
                                 "or a path through Datastream/ or FeatureOfInterest/")
            return COLUMNS[name]
        if isinstance(n, Binary) and n.op in ("div", "mod"):
            # NULLIF: a zero divisor gives no value (PostgreSQL would fail the query); mod as
            # a - b * trunc(a / b), which both stores compute for doubles (PostgreSQL's % is for integers).
            # The dividend as a double: PostgreSQL divides integers as integers (7 div 2 = 3), DuckDB does not.
            if n.op == "div":
                return f"(CAST({value(n.left)} AS DOUBLE PRECISION) / NULLIF({value(n.right)}, 0))"
            return f"({value(n.left)} - {value(n.right)} * trunc({value(n.left)} / NULLIF({value(n.right)}, 0)))"
        if isinstance(n, Binary) and n.op in ("add", "sub", "mul"):
            return f"({value(n.left)} {SQL_OPS[n.op]} {value(n.right)})"
        if isinstance(n, Call):
            raise QueryError(f"$filter: the function {n.name}() is not supported on an Observation's own properties")
        return f"({condition(n)})"

    def kind(n: Any) -> str | None:
        """The type of an operand (None for null); arithmetic is on numbers only."""
        if isinstance(n, Literal):
            v = n.value
            return (None if v is None else "boolean" if isinstance(v, bool) else "number" if isinstance(v, (int, float))
                    else "time" if isinstance(v, datetime) else "text")
        if isinstance(n, Path) and n.parts == ("phenomenonTime",):
            return "time"
        if isinstance(n, Binary) and n.op in ARITH:
            for side in (n.left, n.right):
                if kind(side) not in ("number", None):
                    raise QueryError(f"$filter: {n.op} needs numbers, not {_show(side)}")
            return "number"
        if isinstance(n, Path):
            value(n)  # refuses any path but result and phenomenonTime, saying why
        return "number"

    def literal_time(n: Any) -> Any:
        """A string compared with phenomenonTime is read as a time (so quoted times work too)."""
        if isinstance(n, Literal) and isinstance(n.value, str):
            return Literal(parse_time(n.value))
        return n

    def id_comparison(op: str, lit: Any, flipped: bool) -> str:
        if not isinstance(lit, Literal):
            raise QueryError("$filter: compare an Observation's @iot.id with a literal id")
        ds, t_us = parse_observation_id(lit.value)
        if flipped:
            op = FLIP.get(op, op)
        t = _time(t_us)
        if op == "eq":
            params.extend([ds, t])
            return "datastream_id = ? AND phenomenon_time = ?"
        if op == "ne":
            params.extend([ds, t])
            return "NOT (datastream_id = ? AND phenomenon_time = ?)"
        strict = SQL_OPS[op][0]  # > or <
        params.extend([ds, ds, t])
        return f"datastream_id {strict} ? OR (datastream_id = ? AND phenomenon_time {SQL_OPS[op]} ?)"

    def condition(n: Any) -> str:
        if isinstance(n, Binary) and n.op in SQL_OPS and n.op not in ARITH:
            for a, b in ((n.left, n.right), (n.right, n.left)):
                if isinstance(a, Path) and a.parts in DATASTREAM_ID and isinstance(b, Literal) and isinstance(b.value, int) and not isinstance(b.value, bool):
                    # The common `Datastream/@iot.id eq 5`: straight to the column.
                    op = n.op if a is n.left else FLIP.get(n.op, n.op)
                    params.append(b.value)
                    return f"datastream_id {SQL_OPS[op]} ?"
        if _is_nav_only(n):
            ids = [ds for ds in (datastreams if datastreams is not None else catalog.keys("Datastreams"))
                   if catalog.matches(n, "Observations", f"{ds}-0", (int(ds), 0, 0.0))]
            if not ids:  # no array parameter: an empty one has no element type in PostgreSQL
                return "FALSE"
            params.append(ids)
            return "datastream_id = ANY(?)"
        if isinstance(n, Not):
            return f"NOT ({condition(n.operand)})"
        if isinstance(n, Binary) and n.op in ("and", "or"):
            return f"({condition(n.left)}) {n.op.upper()} ({condition(n.right)})"
        if isinstance(n, Binary) and n.op in SQL_OPS and n.op not in ("add", "sub", "mul", "div", "mod"):
            left, right = n.left, n.right
            for a, b, flipped in ((left, right, False), (right, left, True)):
                if isinstance(a, Path) and a.parts in (("@iot.id",), ("id",)):
                    return id_comparison(n.op, b, flipped)
            if isinstance(left, Path) and left.parts == ("phenomenonTime",):
                right = literal_time(right)
            if isinstance(right, Path) and right.parts == ("phenomenonTime",):
                left = literal_time(left)
            lt, rt = kind(left), kind(right)
            if None not in (lt, rt) and lt != rt:
                what = {"number": "a number", "time": "a time", "text": "text", "boolean": "a boolean"}
                raise QueryError(f"$filter: cannot compare {what[lt]} with {what[rt]} ({n.op} between {_show(left)} and {_show(right)}); "
                                 "result is a number, phenomenonTime a time")
            if lt is None or rt is None:  # null: only eq and ne hold, as IS [NOT] NULL
                other = right if lt is None else left
                if n.op not in ("eq", "ne"):
                    return "FALSE"
                return f"{value(other)} IS {'NOT ' if n.op == 'ne' else ''}NULL"
            return f"{value(left)} {SQL_OPS[n.op]} {value(right)}"
        if isinstance(n, Literal) and isinstance(n.value, bool):
            return "TRUE" if n.value else "FALSE"
        raise QueryError("$filter: expected a condition (a comparison, and, or, not)")

    return condition(node), params


def _show(n: Any) -> str:
    if isinstance(n, Literal):
        return repr(n.value) if not isinstance(n.value, datetime) else n.value.isoformat()
    if isinstance(n, Path):
        return str(n)
    return "an expression"


def order_sql(keys: list[tuple[Path, bool]]) -> str:
    """ORDER BY text for $orderby over Observations; the id (datastream, time) breaks ties so that
    $skip pages never repeat or miss a row."""
    out = []
    for path, desc in keys:
        name = "/".join(path.parts)
        if name in ("@iot.id", "id"):
            out += [f"datastream_id {'DESC' if desc else 'ASC'}", f"phenomenon_time {'DESC' if desc else 'ASC'}"]
        elif name in ("Datastream/@iot.id", "Datastream/id"):
            out.append(f"datastream_id {'DESC' if desc else 'ASC'}")
        elif name in COLUMNS:
            out.append(f"{COLUMNS[name]} {'DESC' if desc else 'ASC'}")
        else:
            raise QueryError(f"$orderby: Observations can be ordered by phenomenonTime, result, @iot.id or Datastream/@iot.id, not {name!r}")
    return ", ".join(out + ["datastream_id ASC", "phenomenon_time ASC"])


def _time(t_us: int) -> datetime:
    return datetime.fromtimestamp(t_us // 1_000_000, timezone.utc).replace(microsecond=t_us % 1_000_000)


def _scope(datastreams: list[int] | None, where_sql: str, where_params: list[Any]) -> tuple[str, list[Any]]:
    if datastreams is None:
        return where_sql, list(where_params)
    return f"datastream_id = ANY(?) AND ({where_sql})", [list(datastreams), *where_params]


def select(reader: Any, datastreams: list[int] | None, where_sql: str, where_params: list[Any], order: str,
           limit: int, offset: int) -> list[tuple[int, int, float]]:
    """(datastream, time µs, result) of the Observations of `datastreams` (None: all) matching."""
    if datastreams is not None and not datastreams:
        return []
    scope, params = _scope(datastreams, where_sql, where_params)
    rows = reader.execute(
        f"SELECT datastream_id, {EPOCH_US}, result FROM observations WHERE {scope} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [(int(a), int(b), float(c)) for a, b, c in rows]


def count(reader: Any, datastreams: list[int] | None, where_sql: str, where_params: list[Any]) -> int:
    if datastreams is not None and not datastreams:
        return 0
    scope, params = _scope(datastreams, where_sql, where_params)
    return int(reader.execute(f"SELECT count(*) FROM observations WHERE {scope}", params).fetchone()[0])


def select_per_datastream(reader: Any, datastreams: list[int], where_sql: str, where_params: list[Any], order: str,
                          limit: int, offset: int, max_rows: int) -> dict[int, list[tuple[int, int, float]]]:
    """The first `limit` rows after `offset` of each datastream in one pass over the table (an
    $expand of the Observations of many Datastreams: one query, not one per Datastream). At most
    `max_rows` rows in all are read, so one request cannot hold the table in memory: the caller
    refuses the request when that many come back."""
    if not datastreams:
        return {}
    scope, params = _scope(datastreams, where_sql, where_params)
    rows = reader.execute(
        f"SELECT datastream_id, t, result FROM (SELECT datastream_id, {EPOCH_US} AS t, result, "
        f"row_number() OVER (PARTITION BY datastream_id ORDER BY {order}) AS rn FROM observations WHERE {scope}) AS ranked "
        "WHERE rn > ? AND rn <= ? ORDER BY datastream_id, rn LIMIT ?",
        [*params, offset, offset + limit, max_rows],
    ).fetchall()
    out: dict[int, list[tuple[int, int, float]]] = {}
    for a, b, c in rows:
        out.setdefault(int(a), []).append((int(a), int(b), float(c)))
    return out


def count_per_datastream(reader: Any, datastreams: list[int], where_sql: str, where_params: list[Any]) -> dict[int, int]:
    if not datastreams:
        return {}
    scope, params = _scope(datastreams, where_sql, where_params)
    rows = reader.execute(f"SELECT datastream_id, count(*) FROM observations WHERE {scope} GROUP BY datastream_id", params).fetchall()
    return {int(a): int(b) for a, b in rows}


def exists(reader: Any, ds: int, t_us: int) -> float | None:
    """The result of one Observation, or None if there is none."""
    row = reader.execute("SELECT result FROM observations WHERE datastream_id = ? AND phenomenon_time = ?", [ds, _time(t_us)]).fetchone()
    return None if row is None else float(row[0])
