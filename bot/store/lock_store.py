"""Rasa's lock store, chosen by REDIS_URL: Redis when set, in memory otherwise.

endpoints.yml cannot say "Redis only if configured", so it names this class, which picks.
"""

from __future__ import annotations

from typing import Optional, Text
from urllib.parse import urlsplit

from rasa.core.lock import TicketLock
from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bot.settings import settings


def redis_kwargs(url: str) -> dict:
    parts = urlsplit(url)
    db = (parts.path or "/").lstrip("/") or "1"
    return {
        "host": parts.hostname or "localhost",
        "port": parts.port or 6379,
        "db": int(db),
        "username": parts.username,
        "password": parts.password,
        "use_ssl": parts.scheme == "rediss",
    }


class LineLockStore(LockStore):
    """Delegates to Redis or in-memory locks."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None) -> None:
        url = settings().redis_url
        self.delegate: LockStore = (
            RedisLockStore(**redis_kwargs(url)) if url else InMemoryLockStore()
        )
        super().__init__()

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        return self.delegate.get_lock(conversation_id)

    def delete_lock(self, conversation_id: Text) -> None:
        self.delegate.delete_lock(conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        self.delegate.save_lock(lock)
