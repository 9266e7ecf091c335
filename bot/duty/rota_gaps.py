"""Gaps in the rota within the next 14 days: a warning in the log at start-up and a banner on
console pages (``bot/escalation/coverage.py`` finds them).

A gap is a time when the line tells people its out-of-hours team is on duty while a tier of
an escalation ladder has nobody on call. Staff must hear about it while there is still time to
find cover, so the duty service checks at start-up, again whenever the rota (a new version in
the database: an edit on the rota page of any duty service, an import) or the hours file
changes, and at least every ``RECHECK_S``, as days come into the window.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Optional

from aiohttp import web

from bot.escalation import coverage
from bot.escalation import rota as rota_module
from bot.escalation import rota_store

logger = logging.getLogger(__name__)

RECHECK_S = 600.0  # every ten minutes regardless, so that time passing brings gaps in
STAT_S = 5.0  # how often the rota's version number and the hours file's mtime are looked at


class RotaGaps:
    """The gaps within ``days``, as lines for the banner (local times, tier, ladders)."""

    def __init__(self, rota_path: str, days: int = coverage.WARN_DAYS, *,
                 url: Optional[str] = None) -> None:
        self.rota_path = rota_path  # ROTA_FILE: imported only into a database with no rota
        self.days = days
        self.lines: list[str] = []
        self.source = rota_store.RotaSource(rota_path, url)
        self._stamp: Optional[tuple[Optional[int], float]] = None

    def _current_stamp(self) -> tuple[Optional[int], float]:
        """Blocking: the rota's latest version number and the hours file's mtime."""
        from sqlalchemy.orm import Session

        from bot.directory.schedule import HOURS_PATH
        from bot.store import db

        with Session(db.get_engine(self.source.url), future=True) as session:
            number = rota_store.latest_number(session)
        try:
            hours = os.stat(HOURS_PATH).st_mtime
        except OSError:
            hours = -1.0
        return number, hours

    def changed(self) -> bool:
        """Blocking (a database read)."""
        return self._current_stamp() != self._stamp

    def check(self) -> list[str]:
        """Blocking: read the rota and hours, find the gaps, keep and return them."""
        self._stamp = self._current_stamp()
        try:
            r = self.source.get()
        except rota_module.RotaError as exc:
            # No rota in the database and ROTA_FILE is not valid: the dispatcher says so
            # itself. Nothing to compare here.
            logger.error("rota check: no valid rota (%d problems)", len(exc.problems))
            return self.lines
        gaps = coverage.gaps_within(r, self.days)
        self.lines = [gap.describe(r.timezone) for gap in gaps]
        return self.lines


async def rota_gaps_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.duty.keys import ROTA_GAPS_KEY, SETTINGS_KEY

    cfg = app[SETTINGS_KEY]
    watch = RotaGaps(cfg.rota_file, url=cfg.database_url)
    app[ROTA_GAPS_KEY] = watch
    try:
        lines = await asyncio.to_thread(watch.check)
    except Exception as exc:  # noqa: BLE001  a check that fails must not stop the service
        logger.error("rota check failed at start-up (%s)", type(exc).__name__)
        lines = []
    _warn(lines, watch.days)
    task = asyncio.create_task(_recheck(watch), name="rota-gaps")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _warn(lines: list[str], days: int) -> None:
    if not lines:
        return
    # Times and tier ids only: no names or numbers of staff.
    logger.warning("ROTA GAP: %d gap(s) in the next %d days when the line says its out-of-hours "
                   "team is on duty but a tier has nobody on call: %s%s", len(lines), days,
                   "; ".join(lines[:5]), " ..." if len(lines) > 5 else "")


async def _recheck(watch: RotaGaps) -> None:
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(STAT_S)
        try:
            if await asyncio.to_thread(watch.changed) or loop.time() - last >= RECHECK_S:
                before = list(watch.lines)
                lines = await asyncio.to_thread(watch.check)
                last = loop.time()
                if lines and lines != before:
                    _warn(lines, watch.days)
        except Exception as exc:  # noqa: BLE001  keep the last answer; try again later
            logger.error("rota check failed (%s)", type(exc).__name__)
