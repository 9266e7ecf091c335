"""UK bank holidays from the ``holidays`` package, for the nation the line serves.

England and Wales by default (``HOLIDAY_NATION=ENG``); Scotland (``SCT``), Wales (``WLS``) and
Northern Ireland (``NIR``) differ, for example on St Andrew's Day or the Twelfth. Substitute days
("Boxing Day (observed)" on Monday 28 December 2026) count as bank holidays, as people live them.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Dict, Optional

import holidays

from bot.settings import settings

_NATIONS = {
    "ENG": "ENG",
    "ENGLAND": "ENG",
    "ENGLAND AND WALES": "ENG",
    "WLS": "WLS",
    "WALES": "WLS",
    "SCT": "SCT",
    "SCOTLAND": "SCT",
    "NIR": "NIR",
    "NORTHERN IRELAND": "NIR",
}


def nation_code(nation: Optional[str] = None) -> str:
    """The ``holidays`` subdivision for ``nation`` (default: the ``HOLIDAY_NATION`` setting)."""
    raw = (nation or settings().holiday_nation or "ENG").strip().upper().replace("_", " ")
    try:
        return _NATIONS[raw]
    except KeyError:
        raise ValueError(
            f"HOLIDAY_NATION must be one of ENG, WLS, SCT, NIR (got {nation or raw!r})"
        ) from None


@lru_cache(maxsize=64)
def _calendar(code: str, year: int) -> Dict[dt.date, str]:
    return dict(holidays.country_holidays("GB", subdiv=code, years=year).items())


def bank_holiday_name(day: dt.date, nation: Optional[str] = None) -> Optional[str]:
    """The bank holiday's name if ``day`` is one in ``nation``, else ``None``."""
    return _calendar(nation_code(nation), day.year).get(day)


def is_bank_holiday(day: dt.date, nation: Optional[str] = None) -> bool:
    return bank_holiday_name(day, nation) is not None
