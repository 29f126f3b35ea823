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

Backpressure: the broker may send up to its in-flight window of unacknowledged QoS 1 messages
(MQTT 5: our Receive Maximum) and any number of QoS 0 ones. Messages waiting to be decoded are
counted in payload bytes; above INBOX_HIGH_BYTES the listener stops reading the socket (TCP's
window fills, the broker holds the rest for the session) until they are down to INBOX_LOW_BYTES.
A burst is at most MAX_BURST messages or MAX_BURST_BYTES, and at most MAX_PENDING bursts wait
for their commit, so a slow store costs bounded memory, not a growing queue.

Private parts of aiomqtt 2.5.1 and paho-mqtt 2.2.0 (both pinned in pyproject.toml): aiomqtt has
no manual acknowledgement and no way to read messages without building its own objects, so the
listener uses its paho client (`client._client`: manual_ack_set, ack, on_message, on_socket_open,
loop_read and paho's `_sock`) and watches `client._disconnected` (the future aiomqtt resolves
when the connection is lost). `_paho_of` checks they are there and says which versions are
needed if an upgrade removed them, instead of failing somewhere in the middle.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.metadata
import logging
import random
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from citywall.mqtt.topics import MAX_PAYLOAD, Unreadable, decode_messages, subscriptions

if TYPE_CHECKING:
    from citywall.platform import Platform

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
SESSION_EXPIRY_S = 7 * 86400  # MQTT 5: how long the broker keeps our session (and queues for us) while citywall is down
RECEIVE_MAXIMUM = 65_535  # MQTT 5 (its maximum): unacknowledged messages the broker may send ahead (Mosquitto's default for 3.1.1 clients is 20)
MAX_BURST = 5_000  # messages decoded into one batch
MAX_BURST_BYTES = 8 << 20  # ... and at most this many payload bytes
MAX_PENDING = 8  # bursts waiting for their commit at once
INBOX_HIGH_BYTES, INBOX_LOW_BYTES = 32 << 20, 8 << 20  # stop reading the socket above, read again below (payload bytes waiting)
UP_FOR_S = 60.0  # a connection that lasted this long (or acknowledged anything) starts the backoff again from BACKOFF_FIRST_S
TESTED_WITH = {"aiomqtt": "2.5.1", "paho-mqtt": "2.2.0"}  # the private parts used here are those of these versions
RETAINED = ("a retained message: the broker's stored copy of an earlier publish, sent again because citywall subscribed; "
            "not stored as a new observation (publish observations with retain off)")
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

    __slots__ = ("_sock", "_buf", "_pos", "paused")

    def __init__(self, sock: Any) -> None:
        self._sock, self._buf, self._pos = sock, b"", 0
        self.paused = False  # backpressure: serve what is buffered, read nothing more from the socket

    def recv(self, n: int) -> bytes:
        if self._pos >= len(self._buf):
            if self.paused:
                raise BlockingIOError  # paho: nothing to read now (it keeps a partly read packet for later)
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


class Reads:
    """The socket reads of an aiomqtt client: buffered, and paused for backpressure.

    `pause()` takes the socket out of the event loop (and `_BufferedSocket` stops reading it);
    `resume()` puts it back with `_readable`, which does what aiomqtt's own reader callback does
    (loop_read while bytes are buffered) and reports a failure in `failed` instead of aiomqtt's
    `_disconnected`."""

    def __init__(self, paho: Any) -> None:
        self.paho = paho
        self.sock: _BufferedSocket | None = None
        self.paused = False
        self.failed: asyncio.Future[None] | None = None

    def pause(self) -> None:
        sock = self.sock
        if self.paused or sock is None:
            return
        self.paused = sock.paused = True
        fd = sock.fileno()
        if fd >= 0:
            asyncio.get_running_loop().remove_reader(fd)

    def resume(self) -> None:
        sock = self.sock
        if not self.paused or sock is None:
            return
        self.paused = sock.paused = False
        fd = sock.fileno()
        if fd >= 0:  # -1 once closed: the connection is gone, the session ends anyway
            loop = asyncio.get_running_loop()
            loop.add_reader(fd, self._readable)
            loop.call_soon(self._readable)  # what was buffered when reading paused

    def _readable(self) -> None:
        try:
            while True:
                self.paho.loop_read()
                if self.paused or self.sock is None or self.sock.pending() <= 0:
                    break
        except Exception as exc:  # noqa: BLE001 - as aiomqtt: a broken connection
            if self.failed is not None and not self.failed.done():
                self.failed.set_exception(exc)


def buffered_reads(client: Any) -> Reads:
    """Make an aiomqtt client read through `_BufferedSocket` (before it connects)."""
    paho = _paho_of(client)
    reads = Reads(paho)
    aiomqtt_open = paho.on_socket_open

    def on_socket_open(c: Any, userdata: Any, sock: Any) -> None:
        reads.sock = c._sock = _BufferedSocket(sock)  # noqa: SLF001 - paho reads from c._sock; aiomqtt watches the real socket
        aiomqtt_open(c, userdata, sock)

    paho.on_socket_open = on_socket_open
    return reads


def _paho_of(client: Any) -> Any:
    """The paho client inside an aiomqtt client, after checking the private parts used here exist."""
    import paho.mqtt.client as paho_client

    paho = getattr(client, "_client", None)
    if (not isinstance(paho, paho_client.Client) or not isinstance(getattr(client, "_disconnected", None), asyncio.Future)
            or not all(hasattr(paho, a) for a in ("manual_ack_set", "ack", "on_socket_open", "loop_read", "_sock"))):
        found = {name: _version(name) for name in TESTED_WITH}
        raise RuntimeError(f"citywall's MQTT listener uses private parts of aiomqtt and paho-mqtt that this installation lacks "
                           f"(found {found}; it needs {TESTED_WITH}, as pyproject.toml pins them)")
    return paho


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class _Message:
    __slots__ = ("topic", "payload", "mid", "qos", "retain")

    def __init__(self, topic: str, payload: bytes, mid: int, qos: int, retain: bool) -> None:
        self.topic, self.payload, self.mid, self.qos, self.retain = topic, payload, mid, qos, retain


class MqttFeed:
    """A Feed (see citywall.feeds) reading the MQTT topics of `citywall.mqtt.topics`."""

    simulated = False

    def __init__(self, url: str, *, client_id: str = "citywall", prefix: str = "", protocol: str = "5",
                 session_expiry_s: int = SESSION_EXPIRY_S, receive_maximum: int = RECEIVE_MAXIMUM,
                 max_burst: int = MAX_BURST, max_payload: int = MAX_PAYLOAD, name: str = "mqtt") -> None:
        protocol, client_id, prefix = str(protocol), str(client_id), str(prefix)  # --mqtt-option reads 5 as a number
        if protocol not in ("5", "3.1.1"):
            raise ValueError(f"MQTT protocol {protocol!r}: 5 or 3.1.1")
        if prefix and (not prefix.endswith("/") or "+" in prefix or "#" in prefix):
            raise ValueError(f"MQTT topic prefix {prefix!r}: topic levels ending in '/', without the wildcards + and # (e.g. seoul/)")
        self.name = name
        self.url = url
        self.host, self.port, self._user, self._password = parse_url(url)
        self.client_id, self.prefix, self.protocol = client_id, prefix, protocol
        self.session_expiry_s, self.receive_maximum, self.max_burst = int(session_expiry_s), int(receive_maximum), int(max_burst)
        self.max_payload = int(max_payload)
        self._running = False
        self._state = "starting"
        self._error: str | None = None
        self._last_ok: float | None = None
        self._down_since: float | None = None
        self._connected_since: float | None = None
        self._acked_at: float | None = None  # epoch seconds of the last PUBACK sent (benchmarks time the end with it)
        self.counts = {"received": 0, "acknowledged": 0, "rows_accepted": 0, "rows_refused": 0, "unreadable": 0, "connects": 0,
                       "read_pauses": 0}
        self._inbox: collections.deque[_Message] = collections.deque()
        self._inbox_bytes = 0
        self._reads: Reads | None = None
        self._acked_this_session = False
        self._session_present: bool | None = None
        self._arrived = asyncio.Event()

    # -- the feed protocol ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"running": self._running, "state": self._state, "error": self._error, "last_ok": _iso(self._last_ok),
                "down_since": _iso(self._down_since), "broker": self._public_url(), "client_id": self.client_id,
                "protocol": self.protocol, "topics": subscriptions(self.prefix), "connected_since": _iso(self._connected_since),
                "last_ack_at": self._acked_at, "session_present": self._session_present, "waiting": len(self._inbox),
                "reading_paused": bool(self._reads and self._reads.paused), **self.counts}

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
                    # Start the backoff again only after a connection that worked: a store refusing every
                    # commit (connect, fail, reconnect) must not reconnect twice a second for ever.
                    worked = self._acked_this_session or (self._connected_since is not None and time.time() - self._connected_since >= UP_FOR_S)
                    self._down(_describe(exc))
                    if worked:
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
        paho = _paho_of(client)  # aiomqtt has no manual acknowledgement of its own; paho's is the documented way
        paho.manual_ack_set(True)
        # Read messages straight from paho (no per-message aiomqtt Message/Topic objects): the hot path.
        paho.on_message = self._on_message
        aiomqtt_connect = paho.on_connect

        def on_connect(c: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any = None) -> None:
            self._session_present = bool(getattr(flags, "session_present", False))  # did the broker keep our session?
            aiomqtt_connect(c, userdata, flags, reason_code, properties)

        paho.on_connect = on_connect
        self._reads = buffered_reads(client)
        self._reads.failed = asyncio.get_running_loop().create_future()
        return client

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        payload = message.payload
        self._inbox.append(_Message(message.topic, payload, message.mid, message.qos, message.retain))
        self._inbox_bytes += len(payload)
        if self._inbox_bytes > INBOX_HIGH_BYTES and self._reads is not None and not self._reads.paused:
            self._reads.pause()
            self.counts["read_pauses"] += 1
        self._arrived.set()

    async def _subscribe(self, client: Any) -> None:
        """QoS 1 subscriptions; a refused one (an ACL, say) is an error, not a silent nothing-arrives."""
        from paho.mqtt.subscribeoptions import SubscribeOptions

        for topic in subscriptions(self.prefix):
            if self.protocol == "5":  # retained messages are old copies: not sent (3.1.1 cannot say so; they are quarantined)
                granted = await client.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND))
            else:
                granted = await client.subscribe(topic, qos=1)
            code = granted[0] if granted else None
            value = getattr(code, "value", code)
            if code is None or getattr(code, "is_failure", False) or int(value) >= 0x80:
                raise ConnectionRefusedError(f"the broker refused the subscription to {topic!r} ({code}); "
                                             "may citywall's user read it (Mosquitto: acl_file)?")
            if int(value) == 0:
                log.warning("MQTT: the broker granted QoS 0 for %s: what it sends there is not held for citywall if the connection drops", topic)

    async def _session(self, platform: Platform) -> None:
        client = self._client()
        reads = self._reads
        assert reads is not None and reads.failed is not None
        self._inbox.clear()  # anything unacknowledged from a previous connection comes again
        self._inbox_bytes, self._acked_this_session = 0, False
        async with client:
            # Resolves when the broker goes away; taken after __aenter__, which replaces the future.
            gone = asyncio.ensure_future(client._disconnected)  # noqa: SLF001
            if self.counts["connects"] and not self._session_present:
                log.warning("MQTT: %s did not keep citywall's session (%s): what was published for it while it was away, and what "
                            "it had not acknowledged, is lost (Mosquitto: persistence, session expiry; the embedded broker keeps no session)",
                            self._public_url(), self.client_id)
            await self._subscribe(client)
            self._up(connected=True)
            log.info("MQTT: connected to %s as %s, reading %s", self._public_url(), self.client_id, ", ".join(subscriptions(self.prefix)))
            pending: asyncio.Queue[tuple[asyncio.Future | None, list[asyncio.Future], list[_Message]]] = asyncio.Queue(MAX_PENDING)
            reader = asyncio.create_task(self._read(platform, pending))
            acker = asyncio.create_task(self._acknowledge(client, pending))
            try:
                done, _ = await asyncio.wait((reader, acker, gone, reads.failed), return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is gone or task is reads.failed:
                        exc = task.exception()
                        raise ConnectionError(f"lost the connection to the broker: {_describe(exc)}" if exc else "the broker closed the connection")
                    task.result()  # raises what stopped it
                    raise RuntimeError("the MQTT listener stopped")
            finally:
                for task in (reader, acker):
                    task.cancel()
                await asyncio.gather(reader, acker, return_exceptions=True)
                if not reads.failed.done():
                    reads.failed.cancel()

    async def _read(self, platform: Platform, pending: asyncio.Queue) -> None:
        """Take what has arrived (up to max_burst), decode it into one batch, submit it."""
        inbox = self._inbox
        while True:
            if not inbox:
                self._arrived.clear()
                await self._arrived.wait()
            burst, size = [], 0
            while inbox and len(burst) < self.max_burst and size < MAX_BURST_BYTES:
                m = inbox.popleft()
                burst.append(m)
                size += len(m.payload)
            self._inbox_bytes -= size
            if self._reads is not None and self._reads.paused and self._inbox_bytes <= INBOX_LOW_BYTES:
                self._reads.resume()
            self.counts["received"] += len(burst)
            fresh = [m for m in burst if not m.retain]
            decoded = decode_messages([(m.topic, m.payload) for m in fresh], platform.registry, platform.clock.now_us(), self.prefix,
                                      self.max_payload)
            committed = asyncio.ensure_future(platform.ingest(decoded.batch)) if decoded.batch is not None else None
            if len(fresh) < len(burst):
                decoded.unreadable.extend(Unreadable(-1, m.topic, m.payload, "retained", RETAINED) for m in burst if m.retain)
            kept = []
            for u in decoded.unreadable:
                detail = u.detail if u.topic in u.detail else f"{u.detail} (topic {u.topic})"
                kept.append(asyncio.wrap_future(platform.pipeline.quarantine_payload(u.body, f"mqtt:{u.topic}", u.reason, detail)))
            await pending.put((committed, kept, burst))
            await asyncio.sleep(0)  # let paho read more before the next burst

    async def _acknowledge(self, client: Any, pending: asyncio.Queue) -> None:
        """PUBACK each burst once everything in it is committed, in arrival order."""
        paho = _paho_of(client)
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
                    rc = paho.ack(m.mid, m.qos)
                    if rc != 0:  # not sent (the connection is gone): the broker delivers it again on reconnect; stored once
                        raise ConnectionError(f"could not acknowledge a message (paho error {rc}); the broker will deliver it again")
                self.counts["acknowledged"] += 1
            self._acked_at = time.time()
            self._acked_this_session = True
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
