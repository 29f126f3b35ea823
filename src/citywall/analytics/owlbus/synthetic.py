"""Generated test networks (SIMULATED): a hexagon-like lattice with random link times and gravity demand.

Used by the scaling benchmark and tests to see how planning cost grows with the number of
nodes up to Seoul's ~1,250 hexagon cells, where no public instance of that size exists. Every
network made here is marked `simulated=True`.
"""

from __future__ import annotations

import math

import numpy as np

from citywall.analytics.owlbus.network import Network


def lattice_network(n: int, seed: int = 0, min_time: float = 1.0, max_time: float = 4.0, trips: float = 20_000.0) -> Network:
    """`n` nodes on a triangular lattice (each cell linked to up to 6 neighbours, like H3 hexagons).

    Link times are uniform in [min_time, max_time] minutes (symmetric, whole tenths of a minute);
    demand follows a gravity model: a few random hot spots give nodes masses, and trips between i
    and j are proportional to mass_i * mass_j / (1 + distance)^2, scaled to `trips` in total.
    """
    if n < 2:
        raise ValueError(f"a network needs at least 2 nodes, got {n}")
    rng = np.random.default_rng(seed)
    cols = max(2, int(math.ceil(math.sqrt(n))))
    xy = np.array([((k % cols) + 0.5 * ((k // cols) % 2), (k // cols) * math.sqrt(3) / 2) for k in range(n)])
    travel = np.full((n, n), np.inf)
    np.fill_diagonal(travel, 0.0)
    d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)
    ii, jj = np.nonzero(np.triu(d2 < 1.01, 1))
    times = np.round(rng.uniform(min_time, max_time, len(ii)), 1)
    travel[ii, jj] = times
    travel[jj, ii] = times
    hubs = xy[rng.choice(n, size=max(1, n // 60 + 2), replace=False)]
    dist_hub = np.sqrt(((xy[:, None, :] - hubs[None, :, :]) ** 2).sum(axis=2))
    mass = 1.0 + 8.0 * np.exp(-(dist_hub ** 2) / 4.0).sum(axis=1) + rng.uniform(0, 0.5, n)
    dist = np.sqrt(d2)
    g = mass[:, None] * mass[None, :] / (1.0 + dist) ** 2
    np.fill_diagonal(g, 0.0)
    demand = np.round(g / g.sum() * trips)
    return Network(travel=travel, demand=demand, coords=xy, geographic=False, names=[str(k) for k in range(n)],
                   simulated=True, source=f"simulated lattice n={n} seed={seed} (gravity demand)")


def size_limits(n: int) -> tuple[int, int, int]:
    """(routes, min nodes, max nodes) that make covering an n-node lattice workable: ~2*sqrt(n) stops a route."""
    max_nodes = max(8, int(round(2 * math.sqrt(n))))
    routes = max(4, int(math.ceil(2.0 * n / max_nodes)))
    return routes, 2, max_nodes
