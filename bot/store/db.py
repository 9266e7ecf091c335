"""Engines and sessions for the one SQL database the three processes share.

Engines are made on first use (never at import) and cached by URL, so a process that only
needs settings never opens a connection.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from bot import settings as settings_module

_engines: Dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the Rasa server, the action server and the duty service read while one writes;
    # the busy timeout makes a writer wait for another instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def get_engine(url: Optional[str] = None) -> Engine:
    """The engine for ``url`` (default: ``DATABASE_URL``), created once per process."""
    url = url or settings_module.settings().database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            parsed = make_url(url)
            # hide_parameters: an SQL error must never quote bound values (numbers, message text).
            kwargs = {"future": True, "pool_pre_ping": True, "hide_parameters": True}
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
            _engines[url] = engine
        return engine


def dispose_all() -> None:
    """Close every cached engine (tests and shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(url: Optional[str] = None) -> sessionmaker:
    return sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)


@contextmanager
def transaction(url: Optional[str] = None) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    with session_factory(url)() as session:
        with session.begin():
            yield session


def ping(url: Optional[str] = None) -> bool:
    """True when the database answers a trivial query."""
    with get_engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))
    return True
