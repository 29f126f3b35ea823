"""The HTTP baseline for ingest: a bare ASGI app under the same uvicorn (uvloop, httptools)
that reads the body, decodes it with the same msgspec type the API uses, and answers.

It stores nothing: it is the floor of "HTTP + JSON decode" on this machine, against which
the citywall HTTP path (decode, validate, store, live state, push) is compared. GET /bytes/N
answers N bytes from memory: the floor of serving a response that size (for GET /api/snapshot).

    python -m uvicorn bench.floor_app:app --port P --log-level warning
"""

from __future__ import annotations

import msgspec

from citywall.observations.model import ObservationIn

_decoder = msgspec.json.Decoder(list[ObservationIn])
_HEAD = [(b"content-type", b"application/json")]
_BYTES: dict[int, bytes] = {}


async def app(scope, receive, send):  # noqa: ANN001, ANN201 - plain ASGI
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    parts = []
    more = True
    while more:
        msg = await receive()
        parts.append(msg.get("body", b""))
        more = msg.get("more_body", False)
    body = b"".join(parts)
    if scope["method"] == "GET" and scope["path"].startswith("/bytes/"):
        size = int(scope["path"].rsplit("/", 1)[1])
        resp = _BYTES.get(size) or _BYTES.setdefault(size, b"0" * size)
    else:
        n = len(_decoder.decode(body)) if scope["method"] == "POST" else 0
        resp = msgspec.json.encode({"batch_id": 0, "accepted": n, "rejected": []})
    await send({"type": "http.response.start", "status": 200, "headers": [*_HEAD, (b"content-length", str(len(resp)).encode())]})
    await send({"type": "http.response.body", "body": resp})
