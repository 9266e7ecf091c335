"""Split long replies into SMS at sentence boundaries, GSM-7 / UCS-2 aware.

An SMS segment holds 160 GSM-7 characters, or 70 UCS-2 code units as soon as one character is
outside GSM-7 (an emoji, a curly apostrophe). Longer messages are concatenated from segments
of 153 / 67, which the phone shows as one message, in order. Separate SMS may arrive out of
order, so a reply is sent as few messages as possible: each part may use up to
``max_segments`` concatenated segments, and parts break between sentences, never mid-word
unless a single word is longer than a part.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 basic character set (without the escape character itself).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (escape + character).
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
GSM_ALL = GSM_BASIC | GSM_EXTENDED
# Outside the Basic Multilingual Plane (most emoji): two UCS-2 code units each.
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

SINGLE = {GSM7: 160, UCS2: 70}
MULTI = {GSM7: 153, UCS2: 67}

# Typographic characters that would silently switch a whole message to UCS-2 (halving what
# fits in a segment) although a plain equivalent reads the same.
_PLAIN = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2022": "-",
}
_PLAIN_TABLE = str.maketrans(_PLAIN)


@dataclass(frozen=True)
class Part:
    text: str
    encoding: str
    segments: int


def normalise(text: str) -> str:
    return text.translate(_PLAIN_TABLE)


def encoding_of(text: str) -> str:
    return GSM7 if GSM_ALL.issuperset(text) else UCS2


def _cost(char: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if char in GSM_EXTENDED else 1
    return 2 if ord(char) > 0xFFFF else 1  # outside the BMP: a UTF-16 surrogate pair


def segment_count(text: str) -> int:
    """How many segments ``text`` takes, packing characters the way handsets do.

    An escaped GSM-7 character or a surrogate pair is never split across two segments, so the
    count can be one more than a plain division would give.
    """
    if not text:
        return 1
    encoding = encoding_of(text)
    if (GSM_EXTENDED.isdisjoint(text) if encoding == GSM7
            else _ASTRAL.search(text) is None):
        # Every character costs one (most replies): plain division, nothing to keep whole.
        n = len(text)
        return 1 if n <= SINGLE[encoding] else -(-n // MULTI[encoding])
    costs = [_cost(c, encoding) for c in text]
    if sum(costs) <= SINGLE[encoding]:
        return 1
    size, segments, used = MULTI[encoding], 1, 0
    for cost in costs:
        if used + cost > size:
            segments += 1
            used = 0
        used += cost
    return segments


def fits(text: str, max_segments: int) -> bool:
    return segment_count(text) <= max_segments


# A sentence ends at . ! ? (with any closing quotes or brackets) before white space, or at a
# line break; the white space after it stays with it so that joining the pieces gives the text.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+|\n\s*")


def _sentences(text: str) -> list[str]:
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


def _pack(pieces: Iterable[str], max_segments: int, split_piece) -> list[str]:
    """Greedy packing: add pieces to the current part while it still fits."""
    parts: list[str] = []
    current = ""
    for piece in pieces:
        candidate = current + piece
        if fits(candidate.strip(), max_segments):
            current = candidate
            continue
        if current.strip():
            parts.append(current.strip())
        current = ""
        if fits(piece.strip(), max_segments):
            current = piece
        else:
            # One piece is longer than a part: break it into smaller pieces and carry on with
            # whatever of it is left, so the next sentence can still join the tail.
            sub = split_piece(piece, max_segments)
            parts.extend(sub[:-1])
            current = sub[-1] + (" " if piece[-1:].isspace() else "")
    if current.strip():
        parts.append(current.strip())
    return parts


def _split_chars(text: str, max_segments: int) -> list[str]:
    parts, current = [], ""
    for char in text.strip():
        if current and not fits(current + char, max_segments):
            parts.append(current)
            current = ""
        current += char
    return parts + [current] if current else parts


def _split_words(text: str, max_segments: int) -> list[str]:
    return _pack(_words(text), max_segments, _split_chars) or [""]


def split_message(text: str, max_segments: int = 3, plain: bool = True) -> list[Part]:
    """The SMS to send for ``text``: each fits in ``max_segments`` segments of its encoding."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if plain:
        text = normalise(text)
    text = text.strip()
    if not text:
        return []
    count = segment_count(text)
    if count <= max_segments:
        # Most replies: one part, which is what packing its sentences would give.
        return [Part(text, encoding_of(text), count)]
    chunks = _pack(_sentences(text), max_segments, _split_words)
    return [Part(c, encoding_of(c), segment_count(c)) for c in chunks if c]
