"""The embedded MQTT broker: amqtt on loopback, started and stopped with the platform.

A city trying citywall out has no broker; one in the same process means `citywall up` accepts
MQTT at once. It binds 127.0.0.1 only and lets anonymous clients in, so it is reachable only
from this machine: devices elsewhere need a real broker (Mosquitto) with authentication and TLS,
given to citywall as `--mqtt mqtt://host:port`. amqtt speaks MQTT 3.1.1 and keeps sessions in
memory: a persistent session survives a reconnect, not a restart of citywall (the broker
restarts with it).

What amqtt 0.12.1 does NOT do, so the embedded broker does not give the guarantees docs/mqtt.md
describes for Mosquitto: it forgets a QoS 1 message it sent when the PUBACK has not come within
5 seconds or the connection drops (so a message whose commit fails is not delivered again), and
it queues nothing for an anonymous client that is away (between a lost connection and the
reconnect). It acknowledges a publisher's message when the message is in its memory. Use
Mosquitto where no observation may be lost.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class EmbeddedBroker:
    def __init__(self, port: int, host: str = LOOPBACK) -> None:
        if host != LOOPBACK:  # not "localhost" (may resolve to more than loopback), not "::1" (amqtt 0.12.1 cannot bind it)
            # Anonymous access is only safe where nobody else can connect.
            raise ValueError(f"the embedded MQTT broker binds loopback only, not {host!r}; use an external broker (--mqtt mqtt://host:port) for devices on the network")
        self.host, self.port = host, port
        self._broker: Any = None

    @property
    def _hostport(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"mqtt://{self._hostport}"

    def config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": self._hostport}},
            # Only anonymous auth: no $SYS publisher, no packet logger (both cost per message).
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    def check_port(self) -> None:
        """Fail now, with one clear line, if the port is taken (`citywall up` asks before starting
        anything; `start` would fail too, amid the traceback of a failed application startup)."""
        import socket

        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server: a port in TIME_WAIT is free
            try:
                s.bind((self.host, self.port))
            except OSError as exc:
                raise OSError(self._cannot_listen(exc.strerror or exc)) from None

    def _cannot_listen(self, why: object) -> str:
        return (f"the embedded MQTT broker cannot listen on {self._hostport}: {why} "
                "(another citywall or broker there? give --mqtt-port N, or --mqtt off, or --mqtt mqtt://host:port)")

    async def start(self) -> None:
        from amqtt.broker import Broker

        logging.getLogger("transitions").setLevel(logging.WARNING)  # amqtt's state machine logs every step at INFO
        self._broker = Broker(self.config())
        try:
            await self._broker.start()
        except Exception as exc:
            self._broker = None
            raise OSError(self._cannot_listen(exc)) from exc
        log.info("embedded MQTT broker listening on %s (loopback only, anonymous)", self.url)

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            try:
                await broker.shutdown()
            except Exception:
                log.exception("the embedded MQTT broker did not shut down cleanly")
