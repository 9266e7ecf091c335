"""Turn directory matches into SMS text: plain UK English, GSM-7 only, ≤ 306 characters each.

306 characters is two concatenated SMS segments (153 each). Characters outside the GSM-7
alphabet would switch the whole message to UCS-2 (70 per segment), so they are replaced.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Iterable, List, Optional

from bot.directory.schema import Service

MAX_CHARS = 306
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€")
_REPLACE = {"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "•": "-"}


def gsm7(text: str) -> str:
    """``text`` with every character made GSM-7 (accents dropped where GSM-7 lacks them)."""
    out = []
    for ch in text:
        ch = _REPLACE.get(ch, ch)
        if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in ch):
            out.append(ch)
            continue
        plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        out.append(plain or "?")
    return "".join(out)


def gsm7_length(text: str) -> int:
    """Septets used: extended characters (``€``, ``[`` ...) take two."""
    return sum(2 if c in _GSM_EXTENDED else 1 for c in text)


def how_to_contact(service: Service) -> str:
    c = service.contact
    if c.phone:
        return f"{c.phone} {c.phone_option}" if c.phone_option else c.phone
    if c.text:
        return f"text {c.text_keyword} to {c.text}" if c.text_keyword else f"text {c.text}"
    return c.web or ""


def _clock(when: dt.datetime) -> str:
    return when.strftime("%H:%M")


def when_open(
    now: dt.datetime,
    open_now: bool,
    open_until: Optional[dt.datetime],
    opens_at: Optional[dt.datetime],
) -> str:
    """"24 hours", "until 02:00", "until Mon 09:00", "opens 18:00", "opens tomorrow 10:00"."""
    if open_now:
        if open_until is None:
            return "24 hours"
        if open_until - now <= dt.timedelta(hours=20):
            return f"until {_clock(open_until)}"
        return f"until {open_until.strftime('%a')} {_clock(open_until)}"
    if opens_at is None:
        return "closed"
    today = now.date()
    if opens_at.date() == today:
        return f"opens {_clock(opens_at)}"
    if opens_at.date() == today + dt.timedelta(days=1):
        return f"opens tomorrow {_clock(opens_at)}"
    if opens_at.date() < today + dt.timedelta(days=7):
        return f"opens {opens_at.strftime('%a')} {_clock(opens_at)}"
    return f"opens {opens_at.day} {opens_at.strftime('%b')} {_clock(opens_at)}"


def item(service: Service, when: str) -> str:
    return gsm7(f"{service.name} ({when}) {how_to_contact(service)}".strip())


def pack(header: str, items: Iterable[str], more: str = "Also: ") -> List[str]:
    """``header`` then items joined by "; ", split into messages of at most MAX_CHARS."""
    header = gsm7(header)
    messages: List[str] = []
    current = header
    first_in_message = True
    for text in items:
        sep = "" if first_in_message else "; "
        candidate = f"{current}{sep}{text}"
        if gsm7_length(candidate) + 1 <= MAX_CHARS:
            current, first_in_message = candidate, False
            continue
        if not first_in_message:
            messages.append(current + ".")
        current = f"{gsm7(more)}{text}"
        first_in_message = False
        if gsm7_length(current) + 1 > MAX_CHARS:  # one absurdly long item
            current = current[: MAX_CHARS - 4] + "..."
    if not first_in_message:
        messages.append(current if current.endswith(".") else current + ".")
    return messages


def fits(message: str) -> bool:
    return gsm7_length(message) <= MAX_CHARS and gsm7(message) == message
