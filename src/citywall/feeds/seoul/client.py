"""One HTTP client for every Seoul Open API service, and what its answers mean.

All services share one URL, `{base}/{KEY}/{json|xml}/{SERVICE}/{start}/{end}/{filters...}`, and one
envelope whose RESULT carries a code: INFO-000 is success, INFO-200 "no data" (an empty answer, not
a failure), anything else (INFO-100 a bad key, ERROR-3xx a bad request, ERROR-5xx/6xx the service
itself) is raised as `SeoulApiError` with the code, the service's own message and what it means in
English, so an operator reading the wall or the log knows whether to fix the key or wait.
The key is part of the URL: every message this module makes has it masked.
"""

from __future__ import annotations

import json
import logging
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_BASE_URL = "http://openapi.seoul.go.kr:8088"
MAX_ROWS = 1000  # the service's limit per call

# The codes the Seoul Open Data Plaza documents for every service, with what to do about them.
CODES = {
    "INFO-000": "success",
    "INFO-100": "the API key is not valid (check CITYWALL_SEOUL_API_KEY)",
    "INFO-200": "no data for this request",
    "ERROR-300": "a required value is missing from the request",
    "ERROR-301": "the file type (json/xml) is missing or not valid",
    "ERROR-310": "no such service (check the service name)",
    "ERROR-331": "the start row is not valid",
    "ERROR-332": "the end row is not valid",
    "ERROR-333": "the start or end row is not a number",
    "ERROR-334": "the start row is after the end row",
    "ERROR-335": "the sample key returns at most 5 rows a call",
    "ERROR-336": "at most 1000 rows a call",
    "ERROR-500": "the service had a server error",
    "ERROR-600": "the service could not reach its database",
    "ERROR-601": "the service's database query failed",
}
NO_DATA = "INFO-200"
OK = "INFO-000"


class SeoulError(Exception):
    """Anything that kept a call from giving data; `str()` is the message the wall shows."""


class SeoulUnreachable(SeoulError):
    """No answer: connection refused, DNS, timeout."""


class SeoulHttpError(SeoulError):
    """An HTTP status other than 200."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class SeoulPayloadError(SeoulError):
    """An answer that is not the service's JSON/XML envelope; `body` is kept for the quarantine."""

    def __init__(self, message: str, body: bytes) -> None:
        super().__init__(message)
        self.body = body


class SeoulApiError(SeoulError):
    """The service answered with an error code (INFO-100, ERROR-xxx)."""

    def __init__(self, service: str, code: str, message: str) -> None:
        meaning = CODES.get(code, "an error code the service does not document")
        super().__init__(f"{service}: {code} {message} ({meaning})".replace("  ", " "))
        self.service, self.code, self.api_message = service, code, message


@dataclass
class Answer:
    """One successful call: the service's section (list_total_count, row, ...), or {} for INFO-200."""

    service: str
    code: str
    message: str
    section: dict[str, Any]
    body: bytes
    total: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.code == NO_DATA


def _xml_to_dict(elem: ET.Element) -> Any:
    """XML as the JSON form would have it: repeated children (row) become lists, leaves text."""
    children = list(elem)
    if not children:
        return (elem.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = _xml_to_dict(child)
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def _result(doc: dict[str, Any]) -> tuple[str, str] | None:
    """The RESULT code and message, wherever this service puts them: inside the section, at the top
    (errors), or with citydata's dotted names ("RESULT.CODE")."""
    res = doc.get("RESULT")
    if isinstance(res, dict):
        code = res.get("CODE") or res.get("RESULT.CODE")
        if code:
            return str(code).strip(), str(res.get("MESSAGE") or res.get("RESULT.MESSAGE") or "").strip()
    if "CODE" in doc and isinstance(doc["CODE"], str):
        return doc["CODE"].strip(), str(doc.get("MESSAGE", "")).strip()
    return None


def parse(service: str, body: bytes, fmt: str = "json", root: str | None = None) -> Answer:
    """Read one answer. `root` is the section's name when it is not the service's (citydata: CITYDATA).
    Raises SeoulPayloadError for what is not an envelope at all and SeoulApiError for error codes."""
    root = root or service
    try:
        if fmt == "xml":
            tree = ET.fromstring(body)
            doc: Any = {tree.tag: _xml_to_dict(tree)}
            if tree.tag == "RESULT":
                doc = _xml_to_dict(tree)
        else:
            doc = json.loads(body)
    except (ValueError, ET.ParseError) as exc:
        raise SeoulPayloadError(f"{service}: the answer is not {fmt.upper()} ({exc})", body) from None
    if not isinstance(doc, dict):
        raise SeoulPayloadError(f"{service}: expected a {fmt.upper()} object, got {type(doc).__name__}", body)
    section = doc.get(root)
    if fmt == "xml" and isinstance(section, str):  # an empty element
        section = {}
    if section is not None and not isinstance(section, dict):
        # A one-object list (some services wrap the section); anything else is not the envelope.
        if isinstance(section, list) and len(section) == 1 and isinstance(section[0], dict):
            section = section[0]
        else:
            raise SeoulPayloadError(f"{service}: section {root} is a {type(section).__name__}, not an object", body)
    found = _result(section or {}) or _result(doc)
    if found is None:
        raise SeoulPayloadError(f"{service}: the answer has no RESULT code (is this the Seoul Open API?)", body)
    code, message = found
    if code == NO_DATA:
        return Answer(service, code, message, {}, body)
    if code != OK:
        raise SeoulApiError(service, code, message)
    if section is None:
        raise SeoulPayloadError(f"{service}: {code} but no {root} section in the answer", body)
    total = section.get("list_total_count")
    try:
        total_n = int(float(total)) if total not in (None, "") else 0
    except (TypeError, ValueError):
        total_n = 0
    extra = {k: v for k, v in doc.items() if k not in (root, "RESULT")}
    return Answer(service, code, message, section, body, total_n, extra)


class _MaskKeys(logging.Filter):
    """httpx logs every request URL at INFO, and Seoul's URLs carry the key: mask it in those records."""

    keys: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.keys and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            masked = []
            for arg in args:
                text = str(arg)
                if any(k in text for k in self.keys):
                    for k in self.keys:
                        text = text.replace(k, "***")
                    arg = text
                masked.append(arg)
            record.args = tuple(masked)
        return True


_MASK = _MaskKeys()
logging.getLogger("httpx").addFilter(_MASK)


class SeoulClient:
    """Calls the services with one pooled httpx.AsyncClient and a timeout on every call."""

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 15.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not api_key:
            raise ValueError("the Seoul Open API needs a key: set CITYWALL_SEOUL_API_KEY or --feed-option api_key=...")
        self.api_key = api_key
        _MASK.keys.update({api_key, quote(api_key, safe="")})
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), transport=transport,
                                       headers={"User-Agent": "citywall (Seoul Open API connector)"})
        self.calls = 0

    def url(self, service: str, start: int, end: int, *filters: str, fmt: str = "json") -> str:
        parts = [quote(self.api_key, safe=""), fmt, service, str(int(start)), str(int(end))]
        parts += [quote(str(f), safe="") for f in filters]
        return f"{self.base_url}/" + "/".join(parts) + ("/" if fmt == "xml" and filters else "")

    def mask(self, text: str) -> str:
        """A message with the key removed: URLs end up in exception texts."""
        return text.replace(quote(self.api_key, safe=""), "***").replace(self.api_key, "***")

    async def fetch(self, service: str, start: int, end: int, *filters: str, fmt: str = "json", root: str | None = None) -> Answer:
        if end - start + 1 > MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS} rows a call (asked {start}..{end})")
        url = self.url(service, start, end, *filters, fmt=fmt)
        self.calls += 1
        try:
            resp = await self._http.get(url)
        except httpx.TimeoutException:
            raise SeoulUnreachable(f"{service}: no answer within {self.timeout_s:g} s from {self.mask(self.base_url)}") from None
        except httpx.HTTPError as exc:
            raise SeoulUnreachable(f"{service}: cannot reach {self.mask(self.base_url)} ({self.mask(str(exc)) or type(exc).__name__})") from None
        if resp.status_code != 200:
            snippet = self.mask(resp.text[:120].strip())
            raise SeoulHttpError(f"{service}: HTTP {resp.status_code} from {self.mask(self.base_url)}{': ' + snippet if snippet else ''}",
                                 resp.status_code)
        return parse(service, resp.content, fmt, root)

    async def aclose(self) -> None:
        await self._http.aclose()


class Backoff:
    """Exponential backoff with jitter (each delay drawn between half and all of the exponential step): many citywall instances that lost
    the API at the same moment do not all come back at the same second. It never gives up: the
    delay stops growing at `cap_s` and a source keeps trying at that pace until it answers."""

    def __init__(self, base_s: float = 5.0, cap_s: float = 600.0, rng: random.Random | None = None) -> None:
        self.base_s, self.cap_s = base_s, cap_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures - 1, 30))
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
