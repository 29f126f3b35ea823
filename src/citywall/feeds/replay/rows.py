"""A replay file's observations in columns, in the order of their phenomenon time.

Each chunk the reader gives (a pyarrow RecordBatch of the file's own columns) becomes one
observation per value: wide rows (a station's hour with six pollutants) are unpivoted, blanks are
counted and skipped (a station that did not measure is not an error), and anything unreadable (a
bad time, a value that is not a number) is kept with where it came from (file, row, column) so
the quarantine can say so. Which datastream a row means is worked out once per distinct
(station, quantity) or datastream reference, not per row, after every station is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citywall.feeds.replay.formats import Layout
from citywall.feeds.replay.times import parse_column
from citywall.ingest.batch import NO_TIME

OK, BAD_TIME, BAD_VALUE = 0, 1, 2
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"

# A row's reference: ("datastream", id or key as text) or ("station", name, quantity as written).
Ref = tuple[str, ...]


def numbers(column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values with NaN where none, blank mask, not-a-number mask) of a value column."""
    typ = column.type
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        blank = column.is_null().to_numpy(zero_copy_only=False)
        bad = ~blank & ~np.isfinite(values)
        return np.where(bad | blank, np.nan, values), blank, bad
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    blank = pc.or_kleene(pc.is_null(text), pc.equal(text, "")).fill_null(True).to_numpy(zero_copy_only=False)
    ok = pc.match_substring_regex(text, _NUMBER).fill_null(False)
    values = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    bad = ~blank & ~ok.to_numpy(zero_copy_only=False)
    return values, blank, bad


def _texts(column: pa.Array) -> tuple[np.ndarray, list[str | None]]:
    """(per-row index into the distinct texts, -1 for null; the distinct texts)."""
    enc = pc.utf8_trim_whitespace(column.cast(pa.string())).dictionary_encode()
    return enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


def _intern(index: dict, items: list, item: Any) -> int:
    """The position of `item` in `items`, appended the first time: rows carry small integers, the
    distinct references and units are kept once."""
    i = index.get(item)
    if i is None:
        i = index[item] = len(items)
        items.append(item)
    return i


@dataclass
class Collected:
    """Everything read from one file, as growing lists of column chunks."""

    layout: Layout
    tz: ZoneInfo
    rows_read: int = 0
    blanks: dict[str, int] = field(default_factory=dict)  # column -> blank values skipped
    refs: list[Ref] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # column names, indexed by `col`
    notes: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, col) -> why unreadable
    texts: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, col) -> an unreadable value as written
    _ref_index: dict[Ref, int] = field(default_factory=dict)
    _unit_index: dict[str, int] = field(default_factory=dict)
    _parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in ("t", "ref", "value", "unit", "row", "col", "err")})

    def _ref(self, ref: Ref) -> int:
        return _intern(self._ref_index, self.refs, ref)

    def _col(self, name: str) -> int:
        if name not in self.columns:
            self.columns.append(name)
        return self.columns.index(name)

    def add(self, chunk: pa.RecordBatch) -> None:
        n = chunk.num_rows
        row = np.arange(self.rows_read + 1, self.rows_read + n + 1, dtype=np.int64)  # 1-based data rows
        self.rows_read += n
        if n == 0:
            return
        lay = self.layout
        t, time_errors = parse_column(chunk.column(lay.time), self.tz)
        time_col = self._col(lay.time)
        if lay.is_wide:
            self._add_wide(chunk, row, t, time_errors, time_col)
        else:
            self._add_long(chunk, row, t, time_errors, time_col)

    def _emit(self, t: np.ndarray, ref: np.ndarray, value: np.ndarray, unit: np.ndarray, row: np.ndarray, col: np.ndarray, err: np.ndarray) -> None:
        for k, a in (("t", t), ("ref", ref), ("value", value), ("unit", unit), ("row", row), ("col", col), ("err", err)):
            self._parts[k].append(a)

    def _value_errors(self, column: pa.Array, bad: np.ndarray, row: np.ndarray, col: int) -> None:
        if bad.any():
            texts = column.cast(pa.string()).to_pylist() if bad.sum() > 64 else None
            for i in np.flatnonzero(bad).tolist():
                text = texts[i] if texts is not None else column[i].as_py()
                self.notes[(int(row[i]), col)] = f"{text!r} is not a number"
                self.texts[(int(row[i]), col)] = str(text)

    def _time_notes(self, time_errors: dict[int, str], row: np.ndarray, time_col: int) -> None:
        for i, why in time_errors.items():
            self.notes[(int(row[i]), time_col)] = why

    def _add_wide(self, chunk: pa.RecordBatch, row: np.ndarray, t: np.ndarray, time_errors: dict[int, str], time_col: int) -> None:
        lay = self.layout
        station_idx, stations = _texts(chunk.column(lay.station))
        self._time_notes(time_errors, row, time_col)
        bad_t = t == NO_TIME
        for quantity, column_name in lay.wide.items():
            column = chunk.column(column_name)
            col = self._col(column_name)
            values, blank, bad = numbers(column)
            self.blanks[column_name] = self.blanks.get(column_name, 0) + int(blank.sum())
            self._value_errors(column, bad & ~bad_t, row, col)
            keep = np.flatnonzero(~blank)
            if not len(keep):
                continue
            # Distinct stations of this chunk -> global references (a null station is "").
            local = np.array([self._ref(("station", s or "", quantity)) for s in stations] + [self._ref(("station", "", quantity))], dtype=np.int32)
            ref = local[station_idx[keep]]  # -1 (null) picks the last entry
            err = np.where(bad_t[keep], BAD_TIME, np.where(bad[keep], BAD_VALUE, OK)).astype(np.int8)
            self._emit(t[keep], ref, values[keep], np.full(len(keep), -1, np.int32), row[keep], np.full(len(keep), col, np.int16), err)

    def _add_long(self, chunk: pa.RecordBatch, row: np.ndarray, t: np.ndarray, time_errors: dict[int, str], time_col: int) -> None:
        lay = self.layout
        n = chunk.num_rows
        value_col = self._col(lay.value)  # type: ignore[arg-type]
        column = chunk.column(lay.value)
        values, blank, bad = numbers(column)
        self.blanks[lay.value] = self.blanks.get(lay.value, 0) + int(blank.sum())  # type: ignore[index]
        bad_t = t == NO_TIME
        self._time_notes({i: w for i, w in time_errors.items() if not blank[i]}, row, time_col)
        self._value_errors(column, bad & ~bad_t, row, value_col)
        # References: the datastream where given, else station + quantity.
        ref = np.full(n, -1, dtype=np.int32)
        if lay.datastream:
            idx, texts = _texts(chunk.column(lay.datastream))
            local = np.array([self._ref(("datastream", s)) for s in texts] + [-1], dtype=np.int32)
            ref = local[idx]
        if lay.station and lay.quantity:
            s_idx, s_texts = _texts(chunk.column(lay.station))
            q_idx, q_texts = _texts(chunk.column(lay.quantity))
            s_texts, q_texts = [*s_texts, ""], [*q_texts, ""]  # index -1: null
            need = np.flatnonzero(ref < 0)
            pairs = np.unique(np.stack([s_idx[need], q_idx[need]], axis=1), axis=0) if len(need) else np.empty((0, 2), np.int64)
            lookup = {(int(a), int(b)): self._ref(("station", s_texts[a], q_texts[b])) for a, b in pairs.tolist()}
            for i in need.tolist():
                ref[i] = lookup[(int(s_idx[i]), int(q_idx[i]))]
        ref = np.where(ref < 0, self._ref(("datastream", "")), ref).astype(np.int32)
        unit = np.full(n, -1, dtype=np.int32)
        if lay.unit:
            u_idx, u_texts = _texts(chunk.column(lay.unit))
            local_u = np.array([self._unit(u) if u else -1 for u in u_texts] + [-1], dtype=np.int32)
            unit = local_u[u_idx]
        keep = np.flatnonzero(~blank)
        err = np.where(bad_t, BAD_TIME, np.where(bad, BAD_VALUE, OK)).astype(np.int8)
        self._emit(t[keep], ref[keep], values[keep], unit[keep], row[keep], np.full(len(keep), value_col, np.int16), err[keep])

    def _unit(self, text: str) -> int:
        return _intern(self._unit_index, self.units, text)

    def arrays(self) -> dict[str, np.ndarray]:
        """All observations, sorted by phenomenon time (stable; unreadable times first)."""
        dtypes = {"t": np.int64, "ref": np.int32, "value": np.float64, "unit": np.int32, "row": np.int64, "col": np.int16, "err": np.int8}
        out = {k: (np.concatenate(v) if v else np.empty(0, dtypes[k])) for k, v in self._parts.items()}
        self._parts = {k: [] for k in self._parts}
        t = out["t"]
        if len(t) > 1 and not (t[1:] >= t[:-1]).all():
            order = np.argsort(t, kind="stable")
            out = {k: v[order] for k, v in out.items()}
        return out
