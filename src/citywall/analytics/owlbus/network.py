"""The network a route set is planned on: stops, direct links with travel times, and demand.

One small dataclass that every Owl-bus piece shares (the planner, the evaluator, the city-data
builders, the exporters), plus the reader for Mumford's benchmark text format (Mandl's network and
the larger Mumford cities), so the published instances can be used directly and compared with
the literature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class NetworkError(ValueError):
    """A network or instance file that cannot be planned on; the message names what is wrong."""


@dataclass
class Network:
    """Stops (nodes), direct links and demand between every pair of stops.

    `travel[i, j]` is the in-vehicle time in minutes along the direct link i -> j (`np.inf` when
    there is none, 0 on the diagonal); a bus route is a simple path along such links. `demand[i, j]`
    is the number of trips from i to j in the planning window. Asymmetric matrices are allowed
    (call records give A -> B and B -> A separately); the planner runs routes both ways.
    """

    travel: np.ndarray
    demand: np.ndarray
    coords: np.ndarray
    geographic: bool = False
    names: list[str] | None = None
    simulated: bool = False
    source: str = ""
    # What one unit of `demand` is, shown next to riders and demand maps so a count is never bare:
    # "trips" for files, "riders a night" for the simulated Seoul demand (scaled to the Owl buses' ridership).
    unit: str = "trips"

    @property
    def n(self) -> int:
        return int(self.travel.shape[0])

    def validate(self) -> None:
        """Raise NetworkError naming the first problem: shapes, NaNs, negative times or demand, names.

        Checked once where a network enters (readers, builders) so the planner's inner loop
        can trust the arrays.
        """
        where = f" ({self.source})" if self.source else ""
        t = np.asarray(self.travel)
        if t.ndim != 2 or t.shape[0] != t.shape[1]:
            raise NetworkError(f"travel times{where} must be a square matrix, got shape {t.shape}")
        n = t.shape[0]
        if n < 2:
            raise NetworkError(f"travel times{where}: a network needs at least 2 nodes, got {n}")
        d = np.asarray(self.demand)
        if d.shape != (n, n):
            raise NetworkError(f"demand{where} has shape {d.shape}, expected ({n}, {n}) to match the travel times")
        c = np.asarray(self.coords)
        if c.shape != (n, 2):
            raise NetworkError(f"coords{where} has shape {c.shape}, expected ({n}, 2)")
        for label, m in (("travel times", t), ("demand", d)):
            bad = np.argwhere(np.isnan(m))
            if bad.size:
                i, j = bad[0]
                raise NetworkError(f"{label}{where}: row {i}, column {j} is NaN")
            bad = np.argwhere(m < 0)
            if bad.size:
                i, j = bad[0]
                raise NetworkError(f"{label}{where}: row {i}, column {j} is negative ({m[i, j]:g})")
        if np.isinf(d).any():
            i, j = np.argwhere(np.isinf(d))[0]
            raise NetworkError(f"demand{where}: row {i}, column {j} is infinite")
        diag = np.diag(t)
        if np.any(diag != 0):
            i = int(np.flatnonzero(diag != 0)[0])
            raise NetworkError(f"travel times{where}: diagonal entry {i} is {diag[i]:g}, expected 0")
        off = t[~np.eye(n, dtype=bool)]
        if np.any(off == 0):
            i, j = np.argwhere((t == 0) & ~np.eye(n, dtype=bool))[0]
            raise NetworkError(f"travel times{where}: row {i}, column {j} is 0 (a link needs a positive time; use Inf for no link)")
        if not np.isfinite(c).all():
            raise NetworkError(f"coords{where} contain NaN or infinite values")
        if self.names is not None and len(self.names) != n:
            raise NetworkError(f"names{where}: {len(self.names)} names for {n} nodes")

    def links(self) -> list[tuple[int, int]]:
        """Directed links (i, j) with a finite travel time, i != j."""
        t = self.travel
        ii, jj = np.nonzero(np.isfinite(t) & ~np.eye(self.n, dtype=bool))
        return list(zip(ii.tolist(), jj.tolist()))

    def label(self, i: int) -> str:
        """A node's display label: its name when given, else its 0-based id."""
        return self.names[i] if self.names is not None else str(i)


def _read_matrix(path: Path) -> np.ndarray:
    """A whitespace-separated square matrix, `Inf` for no link; blank lines are skipped (Mumford's files have them)."""
    rows: list[list[float]] = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        row = []
        for k, tok in enumerate(parts, start=1):
            try:
                v = float(tok)
            except ValueError:
                raise NetworkError(f"{path}: line {lineno}, column {k}: {tok!r} is not a number (use Inf for no link)") from None
            if math.isnan(v):
                raise NetworkError(f"{path}: line {lineno}, column {k}: NaN is not allowed")
            row.append(v)
        if rows and len(row) != len(rows[0]):
            raise NetworkError(f"{path}: line {lineno} has {len(row)} values, earlier rows have {len(rows[0])}")
        rows.append(row)
    if not rows:
        raise NetworkError(f"{path}: no matrix rows found")
    if len(rows) != len(rows[0]):
        raise NetworkError(f"{path}: {len(rows)} rows of {len(rows[0])} values; the matrix must be square")
    return np.array(rows, dtype=float)


def _read_coords(path: Path, n: int) -> np.ndarray:
    """Mumford's coordinate file: a count line, then `x y` per node."""
    lines = [(k, ln.split()) for k, ln in enumerate(path.read_text().splitlines(), start=1) if ln.split()]
    if not lines:
        raise NetworkError(f"{path}: empty coordinate file")
    first_no, first = lines[0]
    body = lines
    if len(first) == 1:
        try:
            count = int(first[0])
        except ValueError:
            raise NetworkError(f"{path}: line {first_no}: expected the node count, got {first[0]!r}") from None
        if count != n:
            raise NetworkError(f"{path}: line {first_no} says {count} nodes but the travel-time matrix has {n}")
        body = lines[1:]
    if len(body) != n:
        raise NetworkError(f"{path}: {len(body)} coordinate lines for {n} nodes")
    out = np.empty((n, 2))
    for i, (lineno, parts) in enumerate(body):
        if len(parts) != 2:
            raise NetworkError(f"{path}: line {lineno}: expected 'x y', got {len(parts)} values")
        try:
            out[i] = [float(parts[0]), float(parts[1])]
        except ValueError:
            raise NetworkError(f"{path}: line {lineno}: {' '.join(parts)!r} is not two numbers") from None
    return out


def read_mumford(prefix: str | Path) -> Network:
    """Read PREFIXTravelTimes.txt, PREFIXDemand.txt and PREFIXCoords.txt (Mumford's instance format).

    Node ids are the 0-based row numbers; names are "1".."n" because the papers number nodes
    from 1 (Mandl's route 1-2-3-6 is [0, 1, 2, 5] here). A missing coordinate file is an error:
    the wall and the GeoJSON export need positions.
    """
    prefix = Path(prefix)
    files = {k: prefix.parent / f"{prefix.name}{k}.txt" for k in ("TravelTimes", "Demand", "Coords")}
    for kind, path in files.items():
        if not path.is_file():
            raise NetworkError(f"instance file not found: {path} (PREFIX{kind}.txt for prefix {str(prefix)!r})")
    travel = _read_matrix(files["TravelTimes"])
    demand = _read_matrix(files["Demand"])
    n = travel.shape[0]
    if demand.shape != travel.shape:
        raise NetworkError(f"{files['Demand']}: {demand.shape[0]}x{demand.shape[1]} matrix but {files['TravelTimes']} is {n}x{n}")
    coords = _read_coords(files["Coords"], n)
    net = Network(travel=travel, demand=demand, coords=coords, geographic=False, names=[str(i + 1) for i in range(n)],
                  simulated=False, source=str(prefix))
    try:
        net.validate()
    except NetworkError as e:
        raise NetworkError(f"{e} [files {files['TravelTimes']}, {files['Demand']}]") from None
    return net
