"""What every Seoul source is to the feed: a name, a polling period, its Things and one poll.

The feed runs each source in its own loop (feed.py), so a source that fails never holds up the
others; a poll raises on failure (the feed marks that source down and backs off) and returns its
counters on success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from citywall.feeds.seoul.client import Answer, SeoulError, SeoulPayloadError
from citywall.feeds.seoul.values import BadValue

if TYPE_CHECKING:
    from citywall.feeds.seoul.client import SeoulClient
    from citywall.observations.model import ThingIn
    from citywall.platform import Platform

log = logging.getLogger(__name__)
T = TypeVar("T")

SOURCE_TAG = "seoul"  # ObservationBatch.source and quarantine source prefix: "seoul-air", "seoul-sdot", ...


class Source(Protocol):
    name: str
    service: str
    every_s: float

    def things(self, platform: Platform) -> list[ThingIn]:
        """The Things known before the first poll (S-DoT adds more as sensors appear)."""

    async def poll(self, client: SeoulClient, platform: Platform) -> dict[str, Any]:
        """One round: fetch, read, submit. Raises SeoulError (or anything) when the round failed."""


def thing_props(service: str, **extra: Any) -> dict[str, Any]:
    return {"source": f"Seoul Open API {service} (data.seoul.go.kr)", **extra}


@contextmanager
def reading(answer: Answer, what: str) -> Iterator[None]:
    """Reading an answer whose shape is wrong (a section that is a word, not rows) raises
    SeoulPayloadError with the whole answer, so the feed keeps it in the quarantine."""
    try:
        yield
    except BadValue as exc:
        raise SeoulPayloadError(f"{what}: {exc}", answer.body) from None


async def quarantine_answer(platform: Platform, source: str, exc: SeoulPayloadError) -> None:
    """Keep an answer that cannot be read at all, whole, with the reason (row_index -1)."""
    try:
        await asyncio.wrap_future(platform.pipeline.quarantine_payload(exc.body, f"{SOURCE_TAG}-{source}", "malformed", str(exc)))
    except Exception:  # noqa: BLE001 - the store being down is reported by the store; the source stays down
        log.exception("could not quarantine an unreadable %s answer", source)


async def fetch_part(client: SeoulClient, platform: Platform, source: str, errors: dict[str, str], part: str,
                     read: Callable[[Answer], T], service: str, *args: Any, **kwargs: Any) -> tuple[bool, T | None]:
    """One call of a round of many (a citydata place, a TrafficInfo link): (True, what `read` made
    of it), or (False, None) with the error kept under `part` in `errors`, so one bad place does not
    fail the round. An answer that cannot be read is kept whole in the quarantine."""
    try:
        answer = await client.fetch(service, *args, **kwargs)
        with reading(answer, f"{service} {part}"):
            got = read(answer)
    except SeoulPayloadError as exc:
        errors[part] = str(exc)
        await quarantine_answer(platform, source, exc)
        return False, None
    except SeoulError as exc:
        errors[part] = str(exc)
        return False, None
    errors.pop(part, None)
    return True, got
