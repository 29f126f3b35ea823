"""The embedded MQTT broker: amqtt on loopback, started and stopped with the platform.

A city trying citywall out has no broker; one in the same process means `citywall up` accepts
MQTT at once. It binds 127.0.0.1 only and lets anonymous clients in, so it is reachable only
from this machine: devices elsewhere need a real broker (Mosquitto) with authentication and TLS,
given to citywall as `--mqtt mqtt://host:port`. amqtt speaks MQTT 3.1.1 and keeps sessions in
memory: a persistent session survives a reconnect, not a restart of citywall (the broker
restarts with it).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class EmbeddedBroker:
    def __init__(self, port: int, host: str = LOOPBACK) -> None:
        if host not in (LOOPBACK, "localhost", "::1"):
            # Anonymous access is only safe where nobody else can connect.
            raise ValueError(f"the embedded MQTT broker binds loopback only, not {host!r}; use an external broker (--mqtt mqtt://host:port) for devices on the network")
        self.host, self.port = host, port
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only anonymous auth: no $SYS publisher, no packet logger (both cost per message).
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    async def start(self) -> None:
        from amqtt.broker import Broker

        logging.getLogger("transitions").setLevel(logging.WARNING)  # amqtt's state machine logs every step at INFO
        self._broker = Broker(self.config())
        try:
            await self._broker.start()
        except Exception as exc:
            self._broker = None
            raise OSError(f"the embedded MQTT broker could not listen on {self.host}:{self.port}: {exc} "
                          "(another broker there? give --mqtt-port, or --mqtt off)") from exc
        log.info("embedded MQTT broker listening on %s (loopback only, anonymous)", self.url)

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            try:
                await broker.shutdown()
            except Exception:
                log.exception("the embedded MQTT broker did not shut down cleanly")
