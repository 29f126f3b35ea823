"""Shared pieces of the benchmarks: the S-DoT-scale registry, server processes, results.

Everything here is deterministic (fixed seeds) and bounded in time: every wait has a
deadline, and server processes are stopped (SIGINT, then SIGKILL) by the pid we started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as _platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable

# S-DoT (Smart Seoul Data of Things): ~1,100 sensors in the 25 gu, each reporting ~13
# quantities every 2 minutes. These are the 13 citywall quantities an S-DoT sensor maps to.
SDOT_QUANTITIES = [
    "pm10", "pm25", "no2", "temperature", "humidity", "wind_speed", "wind_direction",
    "illuminance", "uv_index", "noise", "vibration", "globe_temperature", "visitors",
]
SDOT_SENSORS = 1_100
SDOT_INTERVAL_S = 120.0
SDOT_SENTINELS = [-40.0, 100.0]  # what a broken S-DoT sensor sends (see DatastreamIn)


# -- the registry ------------------------------------------------------------------------
def sdot_things(n_sensors: int = SDOT_SENSORS, quantities: list[str] | None = None, seed: int = 2017) -> list[dict[str, Any]]:
    """ThingIn-shaped dicts: `n_sensors` S-DoT sensors spread over the 25 gu of Seoul.

    Points are drawn inside each gu polygon (rejection sampling), so every sensor gets a
    gu and a dong from the platform's own point-in-polygon, as real ones would.
    """
    import shapely

    from citywall.city import load_city

    city = load_city("seoul")
    rng = np.random.default_rng(seed)
    gus = list(city.districts.values())
    per_gu = np.full(len(gus), n_sensors // len(gus))
    per_gu[: n_sensors % len(gus)] += 1
    quantities = quantities or SDOT_QUANTITIES
    out = []
    for gu, count in zip(gus, per_gu.tolist()):
        minx, miny, maxx, maxy = gu.geometry.bounds
        pts: list[tuple[float, float]] = []
        while len(pts) < count:
            x = rng.uniform(minx, maxx, 256)
            y = rng.uniform(miny, maxy, 256)
            inside = shapely.contains_xy(gu.geometry, x, y)
            pts.extend(zip(x[inside].tolist(), y[inside].tolist()))
        for k, (lon, lat) in enumerate(pts[:count]):
            key = f"sdot-{gu.code}-{k:03d}"
            out.append({
                "key": key, "name": f"S-DoT {gu.name_en} {k}", "kind": "sdot", "lon": round(lon, 6), "lat": round(lat, 6),
                "datastreams": [{"quantity": q, "sentinels": SDOT_SENTINELS, "interval_s": SDOT_INTERVAL_S} for q in quantities],
                "simulated": True,
            })
    return out


def thing_structs(things: list[dict[str, Any]]):  # noqa: ANN201
    import msgspec

    from citywall.observations.model import ThingIn

    return msgspec.convert(things, list[ThingIn])


def value_bounds(quantity_codes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A safe band inside each quantity's plausible range (5%..95%): values there are accepted."""
    from citywall.observations.quantities import quantities

    qs = quantities()
    low = np.array([qs[q].low for q in quantity_codes])
    high = np.array([qs[q].high for q in quantity_codes])
    span = high - low
    return low + 0.05 * span, low + 0.95 * span


def plausible_values(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform values in [lo, hi], never exactly a sentinel (so no row is quarantined by chance)."""
    v = lo + (hi - lo) * rng.random(len(lo))
    v[np.isin(v, SDOT_SENTINELS)] += 0.5
    return v


# -- numbers ------------------------------------------------------------------------------
def city_rows(ds_ids: np.ndarray, quantity_of: list[str], n_rows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n_rows` observations in the order a city sends them: every datastream reports once per
    tick (1 s apart, with a fixed per-sensor offset inside the tick), ticks ending now."""
    rng = np.random.default_rng(seed)
    d = len(ds_ids)
    ticks = -(-n_rows // d)
    r = np.arange(n_rows, dtype=np.int64)
    col, tick = r % d, r // d
    now_us = int(time.time() * 1e6)
    t0 = now_us - (ticks + 5) * 1_000_000
    offset = rng.integers(0, 1_000_000, d)
    ds = ds_ids[col].astype(np.int64)
    t = t0 + tick * 1_000_000 + offset[col]
    lo, hi = value_bounds(quantity_of)
    v = plausible_values(rng, lo[col], hi[col])
    return ds, t, v


def pct(values: Any, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float | None]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {**{f"p{q:g}": None for q in qs}, "max": None, "mean": None, "n": 0}
    out: dict[str, Any] = {f"p{q:g}": round(float(np.percentile(a, q)), 3) for q in qs}
    out["max"] = round(float(a.max()), 3)
    out["mean"] = round(float(a.mean()), 3)
    out["n"] = int(a.size)
    return out


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return str(v)


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [f"\n== {title}", line, "  ".join("-" * w for w in widths)]
    for r in cells:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


# -- machine and results ------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    versions = {}
    for mod in ("citywall", "duckdb", "pyarrow", "numpy", "msgspec", "fastapi", "starlette", "uvicorn", "uvloop", "websockets"):
        with contextlib.suppress(Exception):
            versions[mod] = __import__(mod).__version__
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / 2**20, 1), "kernel": _platform.release(),
        "python": _platform.python_version(), "versions": versions,
    }


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=_jsonable))
    return path


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


# -- processes ----------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS (bytes) of a process, from /proc/PID/status."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(line.split()[1]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tempdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"citywall-bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("CITYWALL_BENCH_KEEP"):
            print(f"kept {path}", flush=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class Server:
    """A `citywall up --feed none` process on a free loopback port."""

    db: Path
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    started_s: float = 0.0
    extra: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> Server:
        # A feed key for this store, as a real data source has; producers (child processes) inherit it.
        made = subprocess.run([PY, "-m", "citywall", "key", "add", "bench", "--role", "feed", "--db", str(self.db)], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        os.environ["CITYWALL_API_KEY"] = made.stdout.strip()
        cmd = [PY, "-m", "citywall", "up", "--feed", "none", "--db", str(self.db), "--port", str(self.port), "--log-level", "warning",
               *([] if "--mqtt" in self.extra else ["--mqtt", "off"]), *self.extra]  # no embedded broker unless a bench asks
        self._log = open(self.log, "wb")  # noqa: SIM115
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        wait_http(self.port, "/api/health", timeout, self.proc)
        self.started_s = time.perf_counter() - t0
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory(self) -> dict[str, int]:
        return proc_status(self.pid)

    def stop(self, timeout: float = 60.0) -> dict[str, int]:
        """Stop gracefully (SIGINT, as Ctrl-C); return the memory figures read just before."""
        mem: dict[str, int] = {}
        if self.proc is not None and self.proc.poll() is None:
            mem = self.memory()
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
        return mem

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_http(port: int, path: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"nothing answered http://127.0.0.1:{port}{path} within {timeout:.0f} s")


def http_json(method: str, url: str, body: Any = None, timeout: float = 120.0) -> Any:
    import urllib.request

    import msgspec

    data = None if body is None else msgspec.json.encode(body)
    headers = {"Content-Type": "application/json", "X-API-Key": os.environ.get("CITYWALL_API_KEY", "")}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return msgspec.json.decode(r.read())


def register_sdot(server: Server, tmp: Path) -> Path:
    """Register the S-DoT-scale sensors through POST /api/things, as an integrator would; write
    their datastream ids and quantities, in id order, to tmp/streams.json for the producer."""
    ds_map: dict[str, int] = http_json("POST", f"{server.base}/api/things", sdot_things())["datastreams"]
    keys = sorted(ds_map, key=ds_map.__getitem__)
    path = tmp / "streams.json"
    path.write_text(json.dumps({"ids": [ds_map[k] for k in keys], "quantities": [k.rsplit(":", 1)[1] for k in keys]}))
    return path


def add_run_options(ap: argparse.ArgumentParser, name: str, quick_s: float, full_s: float) -> None:
    """Options every benchmark against a live server shares."""
    ap.add_argument("--quick", action="store_true", help=f"{quick_s:g} s measured instead of {full_s:g}")
    ap.add_argument("--duration", type=float, default=None, help=f"seconds measured (default {full_s:g}; quick {quick_s:g})")
    ap.add_argument("--profile", action="store_true", help=f"py-spy the server during the run (bench/results/profile-{name}.txt)")


def run_async(main: Any) -> Any:
    """asyncio.run on uvloop when it is installed, as the server runs."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(main)


def run_child(args: list[str], timeout: float, log: Path | None = None) -> subprocess.CompletedProcess:
    """Run a helper process (`python -m bench.X ...`) with a hard time limit."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.run([PY, "-m", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=True)
    finally:
        if log:
            out.close()


def start_child(args: list[str], log: Path) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115
    return subprocess.Popen([PY, "-m", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def finish_child(proc: subprocess.Popen, timeout: float, name: str, log: Path) -> None:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise TimeoutError(f"{name} did not finish within {timeout:.0f} s; see {log}") from None
    if rc != 0:
        raise RuntimeError(f"{name} failed with {rc}:\n{log.read_text()[-3000:]}")


def mib(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


def wait_tcp(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout:.0f} s")


def stop_proc(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# -- the rest of the machine --------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, cpu seconds) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(d)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)
    return out


def _machine_busy() -> float:
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")  # user nice system irq softirq steal


class LoadMonitor:
    """CPU used during a window by this benchmark's processes and by everything else.

    Another job on a 2-core machine changes every figure here; each result records how
    busy the rest of the machine was, so a noisy run can be recognised.
    """

    def __init__(self, interval: float = 0.5) -> None:
        import threading

        self.interval = interval
        self.root = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-load")
        self.ours = self.others = 0.0
        self.busy0 = self.t0 = 0.0
        self.result: dict[str, float] = {}

    def _ours(self, table: dict[int, tuple[int, float]], pid: int) -> bool:
        for _ in range(64):
            if pid == self.root:
                return True
            if pid not in table or pid <= 1:
                return False
            pid = table[pid][0]
        return False

    def _run(self) -> None:
        prev = _proc_table()
        while True:
            stopping = self._stop.wait(self.interval)
            cur = _proc_table()
            for pid, (_, cpu) in cur.items():
                d = cpu - prev[pid][1] if pid in prev else cpu  # a new process: all of its time is in the window
                if d <= 0:
                    continue
                if self._ours(cur, pid):
                    self.ours += d
                else:
                    self.others += d
            prev = cur
            if stopping:
                return

    def __enter__(self) -> LoadMonitor:
        self.t0, self.busy0 = time.monotonic(), _machine_busy()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        dt = time.monotonic() - self.t0
        self.result = {
            "seconds": round(dt, 1), "machine_busy_cores": round((_machine_busy() - self.busy0) / dt, 2),
            "bench_cores": round(self.ours / dt, 2), "other_cores": round(self.others / dt, 2),
            "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0]),
        }


def wait_quiet(max_wait_s: float = 120.0, threshold_cores: float = 0.25, sample_s: float = 2.0) -> dict[str, float]:
    """Wait (bounded) until the rest of the machine uses less than `threshold_cores`."""
    t0 = time.monotonic()
    while True:
        b0 = _machine_busy()
        time.sleep(sample_s)
        busy = (_machine_busy() - b0) / sample_s
        waited = time.monotonic() - t0
        if busy < threshold_cores or waited >= max_wait_s:
            return {"other_cores_at_start": round(busy, 2), "waited_s": round(waited, 1)}


# -- profiling (optional: needs py-spy, `pip install py-spy`; not a project dependency) ---
class ServerProfile:
    """`py-spy record` of a server process for the duration of a `with` block.

    Writes collapsed stacks (flamegraph.pl / speedscope input) to bench/results/profile-NAME.txt
    and returns the functions with the most inclusive samples, per thread, in `.top`.
    """

    def __init__(self, pid: int | None, name: str, enabled: bool, rate: int = 100) -> None:
        self.pid, self.name, self.enabled, self.rate = pid, name, enabled, rate
        self.path = RESULTS / f"profile-{name}.txt"
        self.proc: subprocess.Popen | None = None
        self.top: dict[str, Any] = {}

    def __enter__(self) -> ServerProfile:
        exe = Path(PY).parent / "py-spy"
        if self.enabled and self.pid and exe.exists():
            RESULTS.mkdir(parents=True, exist_ok=True)
            self.proc = subprocess.Popen([str(exe), "record", "--pid", str(self.pid), "--rate", str(self.rate), "--threads",
                                          "--format", "raw", "-o", str(self.path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif self.enabled:
            print("   (profile skipped: py-spy is not installed in this Python's bin directory)")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.path.exists():
            self.top = top_functions(self.path)

def top_functions(path: Path, n: int = 15) -> dict[str, Any]:
    """Per thread: samples, and the `n` functions with most inclusive samples (own code and libraries)."""
    from collections import Counter, defaultdict

    threads: Counter = Counter()
    incl: dict[str, Counter] = defaultdict(Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1] if ": " in frames[0] else frames[0]
        k = int(count)
        threads[thread] += k
        seen = set()
        for f in frames[1:]:
            name = f.split(" (")[0]
            where = f.split(" (")[1].split(":")[0].rsplit("/", 2) if " (" in f else [""]
            key = f"{name} ({'/'.join(where[-2:])})"
            if key not in seen:
                seen.add(key)
                incl[thread][key] += k
    total = sum(threads.values()) or 1
    return {t: {"share": round(c / total, 3), "top": [(f, round(v / c, 3)) for f, v in incl[t].most_common(n)]} for t, c in threads.most_common(4)}
