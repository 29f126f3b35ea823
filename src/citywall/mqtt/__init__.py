"""MQTT ingest: an embedded broker for a city without one, and a listener for any broker.

`broker.EmbeddedBroker` runs amqtt on loopback beside the platform; `listener.MqttFeed`
subscribes (QoS 1, persistent session) to the topics `topics` understands and acknowledges a
message to the broker only once its observations are committed, so nothing the broker
considers delivered can be lost. See docs/mqtt.md.
"""

from __future__ import annotations

import inspect
import socket
from typing import TYPE_CHECKING

from citywall.mqtt.broker import EmbeddedBroker
from citywall.mqtt.listener import MqttFeed

if TYPE_CHECKING:
    from citywall.platform import Settings

__all__ = ["EmbeddedBroker", "MqttFeed", "mqtt_from_settings"]


def mqtt_from_settings(settings: Settings) -> tuple[EmbeddedBroker | None, MqttFeed | None]:
    """`--mqtt embedded|off|mqtt://host:port` -> (the broker to run, or None; the listener, or None).

    The client id must stay the same across restarts (the broker keeps the session, and the
    messages queued for it, under that id) and differ between citywall processes sharing a broker:
    by default it is made of the host name and the HTTP port."""
    mode = settings.mqtt.strip()
    if mode == "off":
        return None, None
    options = dict(settings.mqtt_options)
    options.setdefault("client_id", f"citywall-{socket.gethostname()}-{settings.port}")
    if mode == "embedded":
        broker = EmbeddedBroker(settings.mqtt_port)
        options.setdefault("protocol", "3.1.1")  # amqtt speaks MQTT 3.1.1
        return broker, _feed(broker.url, options)
    if mode.startswith("mqtt://"):
        return None, _feed(mode, options)
    raise ValueError(f"--mqtt {settings.mqtt!r}: expected embedded, off or mqtt://host:port")


def _feed(url: str, options: dict) -> MqttFeed:
    known = set(inspect.signature(MqttFeed).parameters) - {"url", "name"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"--mqtt-option {', '.join(unknown)}: not an MQTT option (options: {', '.join(sorted(known))})")
    return MqttFeed(url, **options)
