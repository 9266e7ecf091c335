"""Wake the alert dispatcher the moment an alert job is committed (PostgreSQL LISTEN/NOTIFY).

``engine.schedule_alert`` (through ``engine.announce_due``) issues ``NOTIFY escalation_alerts``
with the job's id inside the transaction that writes a job due now: the action server's
``record_escalation``, a raised level, a house's answer, a refused staff phone. PostgreSQL
delivers it when that transaction commits, and never for one rolled back. ``AlertWakeup``
listens on its own connection in the duty service and calls ``dispatcher.wake()`` for each
notification, so the first alert no longer waits for the dispatcher's next poll.

Why a dedicated connection, outside the engine's pool: a LISTEN belongs to the session that
issued it, and a pooled connection would be handed to other work (and rolled back, reset or
recycled by the pool). It is in autocommit mode, because notifications reach a session only
between transactions.

Why no thread: the event loop watches the connection's socket (``loop.add_reader``) and
``conn.poll()`` reads what arrived, which never blocks. Only connecting and ``LISTEN`` (which
can wait on the network) run in a worker thread.

The dispatcher's poll stays as the safety net: the wake-up is an optimisation, never the only
way a job is found. A lost connection (PostgreSQL restarted, the backend terminated) is
retried with back-off, and after each (re)connection the dispatcher is woken once, so a job
announced while nobody was listening waits at most until then (or the poll). Nothing here
raises into the duty service; logs carry exception types only (a psycopg2 message can quote
the server's address and the database's name). Payloads are job ids only, and are not even
read: a wake-up means "claim what is due".

With ``SMS_SENDER=duty``, the same connection also LISTENs on the SMS outbox's channel
(``also``), and a new reply part wakes the duty service's SMS sender the same way. That
channel's one payload is read: ``outbox.URGENT`` (a reply in a conversation that shows risk,
the fail-safe reply) calls the channel's ``urgent`` wake-up instead, which skips the gap
between the sender's passes.

On SQLite (or any other database) ``start`` does nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Optional

from psycopg2 import sql
from sqlalchemy.engine import make_url

from bot.sms.outbox import URGENT
from bot.escalation.engine import ALERT_CHANNEL

logger = logging.getLogger(__name__)

# Shown in pg_stat_activity, so operators (and the tests) can tell the listener's session apart.
APPLICATION_NAME = "line-alert-wakeup"


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def connect_listener(url: str, channels: tuple[str, ...] = (ALERT_CHANNEL,)) -> Any:
    """A new psycopg2 connection in autocommit mode, listening on ``channels`` (blocking)."""
    from bot.store import db

    engine = db.get_engine(url)  # for the dialect's reading of the URL; not its pool
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    # Fail fast while the server is down (the loop retries), and notice a peer that vanished
    # without closing the socket (host lost, network cut) in about half a minute rather than
    # the kernel's two hours; the poll covers the gap either way.
    defaults = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10,
                "keepalives_interval": 5, "keepalives_count": 3,
                "application_name": APPLICATION_NAME}
    for key, value in defaults.items():
        cparams.setdefault(key, value)
    conn = engine.dialect.connect(*cargs, **cparams)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for channel in channels:
                cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
    except BaseException:
        conn.close()
        raise
    return conn


class AlertWakeup:
    """LISTENs for due alert jobs and calls ``on_notify`` (``Dispatcher.wake``) for each.

    ``also``: more channels on the same connection, each with its own wake-up: the SMS
    outbox's (``outbox.OUTBOX_CHANNEL``), whose parts the duty service's sender posts when
    ``SMS_SENDER`` is ``duty``.
    """

    def __init__(
        self,
        url: str,
        on_notify: Callable[[], None],
        *,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 5.0,
        run_db: Callable[..., Awaitable[Any]] = asyncio.to_thread,
        connect: Optional[Callable[[str], Any]] = None,
        also: Optional[dict[str, Callable[[], None]]] = None,
        urgent: Optional[dict[str, Callable[[], None]]] = None,
    ) -> None:
        self.url = url
        self.on_notify = on_notify
        self._wakes: dict[str, Callable[[], None]] = {ALERT_CHANNEL: on_notify, **(also or {})}
        # A channel's wake-up for a notification whose payload is ``outbox.URGENT``.
        self._urgent_wakes: dict[str, Callable[[], None]] = dict(urgent or {})
        self.backoff_base_s = backoff_base_s
        # Short: PostgreSQL back after a restart should be heard within seconds. Attempts
        # against a server that is down cost one refused connection each.
        self.backoff_cap_s = backoff_cap_s
        self._db = run_db
        self._connect = connect or functools.partial(connect_listener,
                                                     channels=tuple(self._wakes))
        self._task: Optional[asyncio.Task] = None
        self._stopping = False
        # For /health, tests and operators: the listening backend's pid (None while not
        # listening), notifications received, and connections made.
        self.backend_pid: Optional[int] = None
        self.notifications = 0
        self.connections = 0

    @property
    def enabled(self) -> bool:
        return is_postgresql(self.url)

    async def start(self) -> None:
        if not self.enabled:
            return  # no NOTIFY on SQLite: the dispatcher's poll finds every job
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="alert-wakeup")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopping = True  # a connection that completes after this is closed at once
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def backoff_s(self, failures: int) -> float:
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** max(0, failures - 1)))
        return ceiling * (0.5 + 0.5 * random.random())  # jitter: services restart together

    def _open(self) -> Any:
        """Connect and LISTEN (in a worker thread). If the service began stopping meanwhile,
        nobody awaits the result any more: close the connection here instead of leaking it."""
        conn = self._connect(self.url)
        if self._stopping:
            conn.close()
            return None
        return conn

    async def _run(self) -> None:
        failures = 0  # failed attempts to connect since we last listened
        was_lost = False
        while not self._stopping:
            try:
                conn = await self._db(self._open)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  the server is down: retry, say so once
                failures += 1
                if failures == 1:
                    logger.warning("alert wake-up: cannot listen (%s); retrying, the "
                                   "dispatcher polls meanwhile", type(exc).__name__)
                await asyncio.sleep(self.backoff_s(failures))
                continue
            if conn is None:
                return  # stopping
            if failures or was_lost:
                logger.info("alert wake-up: listening again (%d failed attempts)", failures)
            failures, was_lost = 0, False
            try:
                await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  connection lost: reconnect
                logger.warning("alert wake-up: listening connection lost (%s); reconnecting",
                               type(exc).__name__)
                # A short pause (the server may be restarting), then connect; failures from
                # here on back off up to the cap and are logged once.
                was_lost = True
                await asyncio.sleep(self.backoff_s(1))

    async def _listen(self, conn: Any) -> None:
        """Until the connection fails (raises) or the task is cancelled; closes ``conn``."""
        loop = asyncio.get_running_loop()
        fd = conn.fileno()
        lost: asyncio.Future = loop.create_future()

        def readable() -> None:
            try:
                conn.poll()  # reads what arrived; never blocks
            except Exception as exc:  # noqa: BLE001  handed to _listen, which reconnects
                loop.remove_reader(fd)
                if not lost.done():
                    lost.set_exception(exc)
                return
            if conn.notifies:
                self.notifications += len(conn.notifies)
                channels = {getattr(n, "channel", ALERT_CHANNEL) for n in conn.notifies}
                urgent = {getattr(n, "channel", ALERT_CHANNEL) for n in conn.notifies
                          if getattr(n, "payload", "") == URGENT}
                conn.notifies.clear()
                for channel in channels:
                    wake = (self._urgent_wakes.get(channel) if channel in urgent else None) \
                        or self._wakes.get(channel)
                    if wake is not None:
                        wake()

        loop.add_reader(fd, readable)
        try:
            self.connections += 1
            self.backend_pid = conn.get_backend_pid()
            # Anything announced while nobody listened (first start, or the gap before this
            # reconnection), and anything that arrived with the LISTEN's reply: claim it now.
            conn.notifies.clear()
            for wake in self._wakes.values():
                wake()
            await lost
        finally:
            self.backend_pid = None
            loop.remove_reader(fd)  # before close: the descriptor number may be reused
            try:
                conn.close()
            except Exception:  # noqa: BLE001,S110  already broken; nothing left to release
                pass
