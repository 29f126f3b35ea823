"""Deterministic randomness keyed by (seed, stream, counter), evaluated on whole arrays.

Every random number the simulator uses is a hash of the seed, a stream id (a stable 64-bit
number derived from a name such as "air:pm25:city") and an integer counter (an hour, a knot, a
tick). Nothing is drawn from a stateful generator while running, so the value at a given platform
time depends only on (seed, stream, time): not on when the simulator started, on the order of
calls, or on how ticks were batched.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)


@lru_cache(maxsize=4096)
def stream_id(name: str) -> int:
    """A stable 64-bit id for a stream name (Python's hash() is salted per process; this is not)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def stream_ids(prefix: str, names: list[str] | range | np.ndarray) -> np.ndarray:
    return np.array([stream_id(f"{prefix}:{n}") for n in names], dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 with good avalanche."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> _U64(30))) * _M1
        x = (x ^ (x >> _U64(27))) * _M2
        return x ^ (x >> _U64(31))


def _u64(a: np.ndarray | int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == np.uint64:
        return arr
    return arr.astype(np.int64).view(np.uint64) if arr.dtype.kind == "i" else arr.astype(np.uint64)


def hash64(seed: int, stream: np.ndarray | int, counter: np.ndarray | int) -> np.ndarray:
    """uint64 hash of (seed, stream, counter), broadcast over the arrays."""
    s = _mix(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        h = _mix(_u64(stream) ^ s)
        return _mix(h + _u64(counter) * _M1)


def uniform(seed: int, stream: np.ndarray | int, counter: np.ndarray | int) -> np.ndarray:
    """Uniform in [0, 1)."""
    return (hash64(seed, stream, counter) >> _U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal(seed: int, stream: np.ndarray | int, counter: np.ndarray | int) -> np.ndarray:
    """Standard normal (Box-Muller on the two 32-bit halves of one hash)."""
    h = hash64(seed, stream, counter)
    u1 = ((h >> _U64(32)).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    u2 = ((h & _U64(0xFFFFFFFF)).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def ar1(seed: int, streams: np.ndarray, steps: np.ndarray, phi: float, tol: float = 0.01) -> np.ndarray:
    """Unit-variance AR(1) processes x[s] at integer steps, shape (len(steps), len(streams)).

    Evaluated as the (truncated) moving-average form x_t = c * sum_k phi^k e_{t-k} with the
    innovations e drawn by hash, so any step can be computed directly, in any order, with the
    same result; terms below `tol` of the first are dropped (correlation beyond them is ~0).
    """
    streams = np.asarray(streams, dtype=np.uint64)
    steps = np.asarray(steps, dtype=np.int64)
    k_max = max(1, int(np.ceil(np.log(tol) / np.log(phi))))
    k = np.arange(k_max, dtype=np.int64)
    w = phi**k
    w /= np.sqrt(np.sum(w * w))
    out = np.empty((len(steps), len(streams)))
    chunk = max(1, 2_000_000 // max(1, k_max * len(streams)))
    for i in range(0, len(steps), chunk):
        st = steps[i : i + chunk]
        e = normal(seed, streams[None, None, :], (st[:, None] - k[None, :])[:, :, None])
        out[i : i + chunk] = np.einsum("hks,k->hs", e, w)
    return out


def ar1_at(seed: int, streams: np.ndarray, t_s: np.ndarray, phi: float, step_s: float = 3600.0) -> np.ndarray:
    """`ar1` with `step_s` steps, read at arbitrary times by linear interpolation between steps.
    Shape (len(t_s), len(streams)); only the distinct steps needed are computed."""
    x = np.asarray(t_s, dtype=np.float64) / step_s
    k0 = np.floor(x).astype(np.int64)
    f = (x - k0)[:, None]
    steps, inv = np.unique(np.concatenate([k0, k0 + 1]), return_inverse=True)
    vals = ar1(seed, streams, steps, phi)
    n = len(k0)
    return (1.0 - f) * vals[inv[:n]] + f * vals[inv[n:]]


def smooth(seed: int, stream: np.ndarray | int, t_s: np.ndarray, period_s: float) -> np.ndarray:
    """Smooth unit-variance noise: N(0,1) knots every `period_s`, blended with a smoothstep
    and renormalised so the variance stays 1 between knots. Broadcasts stream against t_s."""
    x = np.asarray(t_s, dtype=np.float64) / period_s
    k0 = np.floor(x)
    f = x - k0
    w = f * f * (3.0 - 2.0 * f)
    k0 = k0.astype(np.int64)
    a = normal(seed, stream, k0)
    b = normal(seed, stream, k0 + 1)
    return ((1.0 - w) * a + w * b) / np.sqrt((1.0 - w) ** 2 + w * w)


def red(seed: int, stream: np.ndarray | int, t_s: np.ndarray, periods: tuple[float, ...]) -> np.ndarray:
    """A sum of smooth noises over several time scales, unit variance (a cheap red-noise)."""
    total = 0.0
    for i, p in enumerate(periods):
        s = np.asarray(stream, dtype=np.uint64) ^ np.uint64(0x5851F42D4C957F2D * (i + 1) & 0xFFFFFFFFFFFFFFFF)
        total = total + smooth(seed, s, t_s, p)
    return total / np.sqrt(len(periods))


def rng(seed: int, *tags: int | str) -> np.random.Generator:
    """A seeded numpy generator for one-off layout decisions (sensor placement, calendars)."""
    words = [seed & 0xFFFFFFFF] + [stream_id(t) & 0xFFFFFFFF if isinstance(t, str) else int(t) & 0xFFFFFFFF for t in tags]
    return np.random.default_rng(np.random.SeedSequence(words))
