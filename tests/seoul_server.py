"""A local stand-in for the Seoul Open API: serves the recorded samples (citywall/feeds/seoul/recorded)
on the services' URL pattern, `/{KEY}/{json|xml}/{SERVICE}/{start}/{end}/{filters...}`, and can be
told to fail the ways the real one does, so the feed's outage handling is tested without the internet.

Failure modes (all services, or one with `fail(mode, service=...)`):
  "http500"  HTTP 500 with a text body          "error500"  HTTP 200 with the ERROR-500 envelope
  "garbage"  HTTP 200 with an HTML page          and `stop()` for connection refused (`start()` again).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote

RECORDED = Path(str(files("citywall.feeds.seoul") / "recorded"))


class RecordedSeoulApi:
    def __init__(self, key: str = "test-key", port: int = 0) -> None:
        self.key = key
        self.port = port
        self.modes: dict[str | None, str] = {}  # service (None: all) -> failure mode
        self.files: dict[tuple[str, str | None], str | bytes] = {}  # (service, first filter or None) -> recorded file name or a body
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # citydata answers by place name (AREA_NM), read from the recorded files themselves.
        self.places: dict[str, str] = {}
        for path in sorted(RECORDED.glob("citydata-POI*.json")):
            if path.stem.count("-") == 1:
                self.places[json.loads(path.read_text("utf-8"))["CITYDATA"]["AREA_NM"]] = path.name

    # -- control ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordedSeoulApi:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                status, ctype, body = owner.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout, a stopping test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="recorded-seoul-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: calls now get connection refused (until `start()`)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail(self, mode: str | None, service: str | None = None) -> None:
        with self._lock:
            if mode is None:
                self.modes.pop(service, None)
            else:
                self.modes[service] = mode

    def serve(self, service: str, name: str, first_filter: str | None = None) -> None:
        """Answer `service` (for one place/link) with a recorded file from now on."""
        with self._lock:
            self.files[(service, first_filter)] = name

    def serve_body(self, service: str, body: bytes, first_filter: str | None = None) -> None:
        """Answer `service` (for one place/link) with these bytes from now on: a shape no recorded file has."""
        with self._lock:
            self.files[(service, first_filter)] = body  # type: ignore[assignment]

    def count(self, service: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if f"/{service}/" in r)

    # -- answers ------------------------------------------------------------------------
    def answer(self, path: str) -> tuple[int, str, bytes]:
        parts = [unquote(p) for p in path.split("?")[0].strip("/").split("/")]
        with self._lock:
            self.requests.append("/".join(parts))
            modes, files_ = dict(self.modes), dict(self.files)
        if len(parts) < 5:
            return 404, "text/plain", b"not found"
        key, fmt, service, start, end, *filters = parts
        mode = modes.get(service) or modes.get(None)
        if mode == "http500":
            return 500, "text/plain", b"Internal Server Error"
        if mode == "garbage":
            return 200, "text/html", b"<html><body><h1>Service temporarily unavailable</h1></body></html>"
        if mode == "error500":
            return self._file("ERROR-500.json", fmt)
        if key != self.key:
            return self._file("INFO-100.json", fmt)
        if int(end) - int(start) + 1 > 1000:
            return self._file("ERROR-336.json", fmt)
        first = filters[0] if filters else None
        name = files_.get((service, first)) or files_.get((service, None)) or self._default(service, first)
        if name is None:
            return self._file("TrafficInfo-INFO-200.xml" if fmt == "xml" else "INFO-200.json", fmt)
        if isinstance(name, bytes):
            return 200, f"application/{fmt};charset=UTF-8", name
        if name.endswith(".xml"):
            return 200, "application/xml;charset=UTF-8", (RECORDED / name).read_bytes()
        doc = json.loads((RECORDED / name).read_text("utf-8"))
        section = doc.get(service)
        if isinstance(section, dict) and isinstance(section.get("row"), list):  # the rows asked for, as the service pages them
            section["row"] = section["row"][int(start) - 1:int(end)]
        return 200, "application/json;charset=UTF-8", json.dumps(doc, ensure_ascii=False).encode()

    def _default(self, service: str, first: str | None) -> str | None:
        if service == "citydata":
            return self.places.get(first or "")
        if service == "TrafficInfo":
            return f"TrafficInfo-{first}.xml" if (RECORDED / f"TrafficInfo-{first}.xml").exists() else None
        return f"{service}.json" if (RECORDED / f"{service}.json").exists() else None

    def _file(self, name: str, fmt: str) -> tuple[int, str, bytes]:
        if fmt == "xml" and name.endswith(".json"):
            doc = json.loads((RECORDED / name).read_text("utf-8"))["RESULT"]
            body = f'<?xml version="1.0" encoding="UTF-8"?>\n<RESULT>\n<CODE>{doc["CODE"]}</CODE>\n<MESSAGE>{doc["MESSAGE"]}</MESSAGE>\n</RESULT>\n'
            return 200, "application/xml;charset=UTF-8", body.encode()
        return 200, "application/json;charset=UTF-8", (RECORDED / name).read_bytes()
