"""What a rule says when its condition starts or stops holding for one subject.

Rules and alarms meet here: the rule engine emits signals, the alarm book turns them into alarms with
a lifecycle. A signal names its rule and subject (a datastream, a place, a feed), so the same
condition holding again later is the same alarm coming back, not a new one each reading.
"""

from __future__ import annotations

import msgspec


class Signal(msgspec.Struct, kw_only=True):
    rule: str
    subject: str
    active: bool
    at_ms: int
    severity: str
    title_ko: str
    title_en: str
    message_ko: str = ""
    message_en: str = ""
    gu: str | None = None
    dong: str | None = None
    lon: float | None = None
    lat: float | None = None
    value: float | None = None
    datastream: int | None = None
    category: str = ""  # air, traffic, crowd, feed, sensor, incident, cross
