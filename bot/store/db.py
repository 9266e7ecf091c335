"""Engines and sessions for the one SQL database the three processes share.

Engines are made on first use (never at import) and cached by URL, so a process that only
needs settings never opens a connection.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from bot import settings as settings_module

_engines: Dict[str, Engine] = {}
# One sessionmaker per engine: each new sessionmaker is a new Session class, whose first
# session builds SQLAlchemy's event dispatch for it, about 0.2 ms of CPU per transaction.
_makers: Dict[Engine, sessionmaker] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the Rasa server, the action server and the duty service read while one writes;
    # the busy timeout makes a writer wait for another instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# A pooled connection used again within this many seconds is not pinged first.
PING_AFTER_IDLE_S = 1.0


def _note_checkin(_dbapi_connection, record) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    """``pool_pre_ping``, but only for a connection that sat idle in the pool.

    A ping is a round trip per transaction, and on a busy server each round trip also waits
    for the GIL (measured in the SMS channel's database thread under load: a fifth of its
    time was pings). A connection that worked less than a second ago is taken as it is; if
    the server went away in that second, the statement fails, SQLAlchemy throws the pool's
    connections away, and the caller's retry (the webhook's 500 to Twilio, the worker's and
    sender's next pass) gets a new one.
    """
    last = record.info.get("checked_in_at")
    if last is not None and time.monotonic() - last < PING_AFTER_IDLE_S:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # noqa: BLE001  the pool replaces the connection and tries again
        raise DisconnectionError(type(exc).__name__) from exc
    finally:
        try:
            cursor.close()
        except Exception:  # noqa: BLE001, S110  a dead connection's cursor may not close
            pass


def get_engine(url: Optional[str] = None) -> Engine:
    """The engine for ``url`` (default: ``DATABASE_URL``), created once per process."""
    url = url or settings_module.settings().database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            parsed = make_url(url)
            # hide_parameters: an SQL error must never quote bound values (numbers, message text).
            kwargs = {"future": True, "pool_pre_ping": False, "hide_parameters": True}
            if parsed.get_backend_name() == "sqlite":
                if parsed.database and parsed.database != ":memory:":
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": 5}
                # SQLAlchemy 1.4 gives a SQLite file no pool: every transaction opened a new
                # connection and ran the pragmas below (the SMS webhook's main cost under
                # load, measured with py-spy). A pool keeps them open; a local file needs no
                # pre-ping.
                kwargs.update(poolclass=QueuePool, pool_size=8, max_overflow=16,
                              pool_pre_ping=False)
            engine = create_engine(url, **kwargs)
            if parsed.get_backend_name() == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                event.listen(engine, "checkin", _note_checkin)
                event.listen(engine, "checkout", _ping_if_idle)
            _engines[url] = engine
        return engine


def dispose_all() -> None:
    """Close every cached engine (tests and shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _makers.clear()


def session_factory(url: Optional[str] = None) -> sessionmaker:
    engine = get_engine(url)
    maker = _makers.get(engine)
    if maker is None:
        with _lock:
            maker = _makers.setdefault(
                engine, sessionmaker(bind=engine, future=True, expire_on_commit=False))
    return maker


def group_safe(fn):
    """Mark ``fn`` as one that may share a transaction with others (``shared_transaction``):
    its only effects are database writes through ``transaction()``, in one transaction when it
    runs on its own, so a rollback undoes it whole and running it again is safe."""
    fn.group_safe = True
    return fn


# The session of a shared transaction open in this thread (``shared_transaction``), if any.
_shared = threading.local()


@contextmanager
def transaction(url: Optional[str] = None) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error.

    Inside ``shared_transaction`` (same thread, default database) it is that transaction's
    session instead, and nothing is committed here.
    """
    session = getattr(_shared, "session", None)
    if session is not None and url is None:
        yield session
        return
    with session_factory(url)() as session:
        with session.begin():
            yield session


@contextmanager
def shared_transaction() -> Iterator[Session]:
    """One transaction for every ``transaction()`` this thread opens until the block ends.

    What it saves is round trips: each transaction of its own costs a pre-ping, a BEGIN and a
    COMMIT, and on a busy server every round trip also waits for the GIL (``dbthread.py``'s
    group commit). Only for functions that do nothing but database work through
    ``transaction()``: a rollback undoes all of them. Nested use joins the outer one.
    """
    if getattr(_shared, "session", None) is not None:
        yield _shared.session
        return
    with transaction() as session:
        _shared.session = session
        try:
            yield session
        finally:
            _shared.session = None


def ping(url: Optional[str] = None) -> bool:
    """True when the database answers a trivial query."""
    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))
    return True
