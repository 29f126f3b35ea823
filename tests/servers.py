"""A real `citywall up` process on a free port, for tests that need one (crash, browser)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db: Path, log: Path, *args: str) -> None:
        self.db, self.log = db, log
        self.args = args or ("--feed", "none")
        if "--mqtt" not in self.args:  # no embedded broker unless asked: servers in parallel would clash on its port
            self.args = (*self.args, "--mqtt", "off")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.key = ""  # a feed API key, made before the first start (the CLI needs the store to itself)

    def command(self, *args: str, stdin: str | None = None) -> str:
        """Run a `citywall` command on this server's store (while the server is stopped); its stdout."""
        python = str(PYTHON) if PYTHON.exists() else sys.executable
        done = subprocess.run([python, "-m", "citywall", *args, "--db", str(self.db)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              input=stdin)
        if done.returncode != 0:
            raise AssertionError(f"citywall {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def start(self, port: int | None = None) -> None:
        """Start (again); a restart may ask for the port it had, as a restarted service keeps its address."""
        self.port = port or free_port()
        if not self.key:
            self.key = self.command("key", "add", "tests", "--role", "feed")
        python = str(PYTHON) if PYTHON.exists() else sys.executable
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [python, "-m", "citywall", "up", *self.args, "--db", str(self.db), "--port", str(self.port), "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                status, _ = self.request("GET", "/api/health", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become healthy within 60 s")

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"content-type": "application/json", "X-API-Key": self.key})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """A clean shutdown (SIGINT, as Ctrl-C), falling back to SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()
