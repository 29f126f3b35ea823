"""English names for Korean place names, in the official Revised Romanization style.

`koroman` applies the pronunciation rules (종로 -> Jongno, 신림 -> Sillim); this module adds
the administrative suffix conventions (-gu, -dong, -ro, N-ga) that signs and maps use.
"""

from __future__ import annotations

import re

import koroman

_SUFFIXES = {"구": "gu", "동": "dong", "로": "ro", "가": "ga", "시": "si", "군": "gun", "읍": "eup", "면": "myeon", "리": "ri"}
_NUMBERED = re.compile(r"^(?P<stem>.+?)(?P<num>\d+)(?P<suffix>가|동)$")


def _word(stem: str) -> str:
    return koroman.romanize(stem).capitalize()


def romanize_place(name: str) -> str:
    """'종로구' -> 'Jongno-gu', '성북동1가' -> 'Seongbuk-dong 1-ga', '을지로3가' -> 'Eulji-ro 3-ga'."""
    numbered = _NUMBERED.match(name)
    if numbered:
        return f"{romanize_place(numbered['stem'])} {numbered['num']}-{_SUFFIXES[numbered['suffix']]}"
    if len(name) > 1 and name[-1] in _SUFFIXES:
        return f"{_word(name[:-1])}-{_SUFFIXES[name[-1]]}"
    return _word(name)
