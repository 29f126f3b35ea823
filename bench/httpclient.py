"""A minimal asyncio HTTP/1.1 keep-alive client for loopback load generation.

General clients (httpx, urllib) spend more CPU per request than the server under test on
a 2-core machine; this one writes a pre-built request and reads one response, nothing else.
"""

from __future__ import annotations

import asyncio
import os


class HttpConn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        # The feed API key the benchmark's server was given (bench.common.Server sets it for its children).
        self.key = os.environ.get("CITYWALL_API_KEY", "")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> HttpConn:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 24)
        return self

    async def close(self) -> None:
        w = self.writer
        if w is not None:
            self.writer = None
            w.close()
            try:
                await w.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def reopen(self) -> HttpConn:
        await self.close()
        return await self.open()

    def head(self, method: str, path: str, body_len: int = 0, ctype: str = "application/json") -> bytes:
        h = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if method in ("POST", "PUT"):
            h += f"Content-Type: {ctype}\r\nContent-Length: {body_len}\r\n"
            if self.key:
                h += f"X-API-Key: {self.key}\r\n"
        return (h + "\r\n").encode()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        assert self.writer is not None
        self.writer.write(self.head(method, path, len(body)) + body)
        return await self.response()

    async def send_raw(self, data: bytes) -> tuple[int, bytes]:
        assert self.writer is not None
        self.writer.write(data)
        return await self.response()

    async def response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked = None, False
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            return status, b"".join(parts)
        return status, (await self.reader.readexactly(length) if length else b"")
