"""The MQTT listener: a feed that reads observations from a broker, QoS 1 end to end.

Why it acknowledges late: with QoS 1 the broker forgets a message once the subscriber sends
PUBACK. paho would send it as soon as the message is read; here acknowledgement is manual and
sent only after `platform.ingest` resolved, i.e. after the commit. A crash, a refused commit or
a lost connection before that leaves the message unacknowledged, and the broker delivers it
again when the same client id reconnects to its persistent session (clean session off; for
MQTT 5, clean start off with a session expiry). So a message is either stored (or kept in the
quarantine with its reason) or still held by the broker, never both lost and acknowledged.
A message delivered twice (committed, then the connection dropped before the PUBACK) is
refused the second time as a duplicate: stored once.

Throughput comes from batching: messages that arrived while the previous burst was being
decoded are decoded together into one ObservationBatch, and several bursts may wait for their
commit at once (the pipeline commits what is queued in one transaction); PUBACKs go out in the
order the messages came, as MQTT requires.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from citywall.mqtt.topics import decode_messages, subscriptions

if TYPE_CHECKING:
    from citywall.platform import Platform

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
SESSION_EXPIRY_S = 7 * 86400  # MQTT 5: how long the broker keeps our session (and queues for us) while citywall is down
RECEIVE_MAXIMUM = 65_535  # MQTT 5 (its maximum): unacknowledged messages the broker may send ahead (Mosquitto's default for 3.1.1 clients is 20)
MAX_BURST = 5_000  # messages decoded into one batch
MAX_PENDING = 8  # bursts waiting for their commit at once
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0


def parse_url(url: str) -> tuple[str, int, str | None, str | None]:
    """mqtt://[user[:password]@]host[:port] -> (host, port, user, password)."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"MQTT broker URL {url!r}: expected mqtt://host[:port] (or --mqtt embedded / off)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ValueError(f"MQTT broker URL {url!r}: {exc}") from None
    return parts.hostname, port, unquote(parts.username) if parts.username else None, unquote(parts.password) if parts.password else None


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


class _BufferedSocket:
    """paho reads each packet with three `recv` calls (type, length, body) and one packet per
    wake-up of the event loop: some 15,000 messages/s on a laptop core. This wrapper reads the
    socket 256 KiB at a time and serves paho's small reads from that; `pending()` tells aiomqtt's
    read callback that more is buffered (it already loops on it for TLS sockets), so a burst is
    parsed in one wake-up. Everything else is the socket's own."""

    __slots__ = ("_sock", "_buf", "_pos")

    def __init__(self, sock: Any) -> None:
        self._sock, self._buf, self._pos = sock, b"", 0

    def recv(self, n: int) -> bytes:
        if self._pos >= len(self._buf):
            data = self._sock.recv(1 << 18)  # BlockingIOError when nothing is there: paho expects it
            if not data:
                return data  # the broker closed the connection
            self._buf, self._pos = data, 0
        start = self._pos
        self._pos = min(start + n, len(self._buf))
        return self._buf[start:self._pos]

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._buf) - self._pos + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def buffered_reads(client: Any) -> None:
    """Make an aiomqtt client read through `_BufferedSocket` (before it connects)."""
    paho = client._client  # noqa: SLF001
    aiomqtt_open = paho.on_socket_open

    def on_socket_open(c: Any, userdata: Any, sock: Any) -> None:
        c._sock = _BufferedSocket(sock)  # noqa: SLF001 - paho reads from c._sock; aiomqtt watches the real socket
        aiomqtt_open(c, userdata, sock)

    paho.on_socket_open = on_socket_open


class _Message:
    __slots__ = ("topic", "payload", "mid", "qos")

    def __init__(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.topic, self.payload, self.mid, self.qos = topic, payload, mid, qos


class MqttFeed:
    """A Feed (see citywall.feeds) reading the MQTT topics of `citywall.mqtt.topics`."""

    simulated = False

    def __init__(self, url: str, *, client_id: str = "citywall", prefix: str = "", protocol: str = "5",
                 session_expiry_s: int = SESSION_EXPIRY_S, receive_maximum: int = RECEIVE_MAXIMUM,
                 max_burst: int = MAX_BURST, name: str = "mqtt") -> None:
        protocol, client_id, prefix = str(protocol), str(client_id), str(prefix)  # --mqtt-option reads 5 as a number
        if protocol not in ("5", "3.1.1"):
            raise ValueError(f"MQTT protocol {protocol!r}: 5 or 3.1.1")
        self.name = name
        self.url = url
        self.host, self.port, self._user, self._password = parse_url(url)
        self.client_id, self.prefix, self.protocol = client_id, prefix, protocol
        self.session_expiry_s, self.receive_maximum, self.max_burst = session_expiry_s, receive_maximum, max_burst
        self._running = False
        self._state = "starting"
        self._error: str | None = None
        self._last_ok: float | None = None
        self._down_since: float | None = None
        self._connected_since: float | None = None
        self._acked_at: float | None = None  # epoch seconds of the last PUBACK sent (benchmarks time the end with it)
        self.counts = {"received": 0, "acknowledged": 0, "rows_accepted": 0, "rows_refused": 0, "unreadable": 0, "connects": 0}
        self._inbox: collections.deque[_Message] = collections.deque()
        self._arrived = asyncio.Event()

    # -- the feed protocol ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"running": self._running, "state": self._state, "error": self._error, "last_ok": _iso(self._last_ok),
                "down_since": _iso(self._down_since), "broker": self._public_url(), "client_id": self.client_id,
                "protocol": self.protocol, "topics": subscriptions(self.prefix), "connected_since": _iso(self._connected_since),
                "last_ack_at": self._acked_at, **self.counts}

    async def run(self, platform: Platform) -> None:
        """Connect, read, reconnect with backoff: never gives up while the platform runs."""
        self._running = True
        delay = BACKOFF_FIRST_S
        try:
            while True:
                try:
                    await self._session(platform)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure (broker gone, refused commit): say it, wait, reconnect
                    was_up = self._connected_since is not None
                    self._down(_describe(exc))
                    if was_up:
                        delay = BACKOFF_FIRST_S
                    log.warning("MQTT %s: %s; reconnecting in %.1f s", self._public_url(), self._error, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_MAX_S)
        finally:
            self._running = False

    # -- one connection -------------------------------------------------------------------
    def _client(self) -> Any:
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        common = {"identifier": self.client_id, "username": self._user, "password": self._password, "keepalive": 30, "timeout": 10}
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            props.ReceiveMaximum = self.receive_maximum
            client = aiomqtt.Client(self.host, self.port, protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=props, **common)
        else:
            client = aiomqtt.Client(self.host, self.port, protocol=aiomqtt.ProtocolVersion.V311, clean_session=False, **common)
        paho = client._client  # noqa: SLF001 - aiomqtt 2.5 has no manual acknowledgement of its own; paho's is the documented way
        paho.manual_ack_set(True)
        # Read messages straight from paho (no per-message aiomqtt Message/Topic objects): the hot path.
        paho.on_message = self._on_message
        buffered_reads(client)
        return client

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        self._inbox.append(_Message(message.topic, message.payload, message.mid, message.qos))
        self._arrived.set()

    async def _session(self, platform: Platform) -> None:
        client = self._client()
        self._inbox.clear()  # anything unacknowledged from a previous connection comes again
        async with client:
            for topic in subscriptions(self.prefix):
                await client.subscribe(topic, qos=1)
            self._up(connected=True)
            log.info("MQTT: connected to %s as %s, reading %s", self._public_url(), self.client_id, ", ".join(subscriptions(self.prefix)))
            pending: asyncio.Queue[tuple[asyncio.Future | None, list[asyncio.Future], list[_Message]]] = asyncio.Queue(MAX_PENDING)
            reader = asyncio.create_task(self._read(platform, pending))
            acker = asyncio.create_task(self._acknowledge(client, pending))
            gone = asyncio.ensure_future(client._disconnected)  # noqa: SLF001 - resolves when the broker goes away
            try:
                done, _ = await asyncio.wait((reader, acker, gone), return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is gone:
                        exc = task.exception()
                        raise ConnectionError(f"lost the connection to the broker: {exc}" if exc else "the broker closed the connection")
                    task.result()  # raises what stopped it
                    raise RuntimeError("the MQTT listener stopped")
            finally:
                for task in (reader, acker):
                    task.cancel()
                await asyncio.gather(reader, acker, return_exceptions=True)

    async def _read(self, platform: Platform, pending: asyncio.Queue) -> None:
        """Take what has arrived (up to max_burst), decode it into one batch, submit it."""
        inbox = self._inbox
        while True:
            if not inbox:
                self._arrived.clear()
                await self._arrived.wait()
            n = min(len(inbox), self.max_burst)
            burst = [inbox.popleft() for _ in range(n)]
            self.counts["received"] += n
            decoded = decode_messages([(m.topic, m.payload) for m in burst], platform.registry, platform.clock.now_us(), self.prefix)
            committed = asyncio.ensure_future(platform.ingest(decoded.batch)) if decoded.batch is not None else None
            kept = []
            for u in decoded.unreadable:
                detail = u.detail if u.topic in u.detail else f"{u.detail} (topic {u.topic})"
                kept.append(asyncio.wrap_future(platform.pipeline.quarantine_payload(u.body, f"mqtt:{u.topic}", u.reason, detail)))
            await pending.put((committed, kept, burst))
            await asyncio.sleep(0)  # let paho read more before the next burst

    async def _acknowledge(self, client: Any, pending: asyncio.Queue) -> None:
        """PUBACK each burst once everything in it is committed, in arrival order."""
        paho = client._client  # noqa: SLF001
        while True:
            committed, kept, burst = await pending.get()
            results = await asyncio.gather(*([committed] if committed else []), *kept, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    # Not stored: do not acknowledge. Dropping the connection makes the broker deliver it again.
                    raise RuntimeError(f"the store refused a commit ({_describe(r)}); {len(burst)} messages not acknowledged, the broker will deliver them again")
            if committed is not None:
                result = results[0]
                self.counts["rows_accepted"] += result.accepted
                self.counts["rows_refused"] += len(result.rejected)
            self.counts["unreadable"] += len(kept)
            for m in burst:
                if m.qos:
                    paho.ack(m.mid, m.qos)
            self.counts["acknowledged"] += len(burst)
            self._acked_at = time.time()
            self._up()

    # -- state ----------------------------------------------------------------------------
    def _up(self, connected: bool = False) -> None:
        now = time.time()
        if connected:
            self._connected_since = now
            self.counts["connects"] += 1
        self._state, self._error, self._down_since, self._last_ok = "ok", None, None, now

    def _down(self, error: str) -> None:
        self._connected_since = None
        if self._state != "down":
            self._down_since = time.time()
        self._state, self._error = "down", error

    def _public_url(self) -> str:
        """The broker URL without a password (status is shown on the wall)."""
        user = f"{self._user}@" if self._user else ""
        return f"mqtt://{user}{self.host}:{self.port}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
