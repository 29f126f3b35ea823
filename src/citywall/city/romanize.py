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


# Words of commercial-district names that are translated, not romanized (a would-be shop owner reads
# "Mangwon Market", not "Mangwonsijang"); longest first, so 전통시장 wins over 시장.
_TRANSLATED = {"관광특구": "Special Tourist Zone", "전통시장": "Traditional Market", "골목상권": "Alley District",
               "발달상권": "Commercial District", "먹자골목": "Food Alley", "시장": "Market", "골목": "Alley", "역": "Station"}
_HANGUL_RUN = re.compile(r"[가-힣0-9]+")


def _name_word(word: str) -> str:
    for ko in sorted(_TRANSLATED, key=len, reverse=True):
        if word == ko:
            return _TRANSLATED[ko]
        if word.endswith(ko) and len(word) > len(ko) and not word[: -len(ko)].isdigit():
            return f"{_name_word(word[: -len(ko)])} {_TRANSLATED[ko]}"
    return romanize_place(word) if re.search(r"[가-힣]", word) else word


def romanize_name(name: str) -> str:
    """A place name of several words: '망원시장' -> 'Mangwon Market', '서촌(경복궁역)' ->
    'Seochon (Gyeongbokgung Station)', '연남동 골목상권 3' -> 'Yeonnam-dong Alley District 3'."""
    out = _HANGUL_RUN.sub(lambda m: _name_word(m.group(0)), name)
    return re.sub(r"(\S)\(", r"\1 (", out)
