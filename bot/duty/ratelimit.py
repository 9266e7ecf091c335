"""Console sign-in limits: failures per (username, client address), slowed down, never locked.

Behind the shipped nginx every request reaches the duty service from 127.0.0.1, so a limit
per address alone was a limit for the whole console: thirty wrong guesses locked every member
of staff out (issue 23). Here a key is one username *at* one client address; after a few
free failures each further try at that key must wait, twice as long each time (up to
``max_delay_s``). Anyone else, and the same person from another address, is untouched. The
right password is not tried while a key waits, so guessing gets no faster by retrying.

The client address is the TCP peer, or, when the peer is one of ``TRUSTED_PROXIES``, the
address that proxy (and any trusted proxy before it) put in ``X-Forwarded-For``
(``client_address``). From anyone else the header is ignored: it is whatever they typed.

Memory is bounded: at most ``max_entries`` keys (least recently used forgotten first), each
forgotten ``forget_after_s`` after its last failure (``cachetools.TTLCache``). Keys are keyed
hashes, so the map holds no username in clear. Kept in this process's memory: a restart
forgetting the counts is acceptable (argon2 already makes each guess slow).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional, Protocol

from cachetools import TTLCache

log = logging.getLogger(__name__)

FORWARDED_FOR = "X-Forwarded-For"


class _Request(Protocol):
    remote: Optional[str]
    headers: object


def _networks(values: Iterable[str]) -> tuple:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _parse(value: str):
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(request: _Request, trusted_proxies: Sequence[str]) -> str:
    """The address of the client a request came from, for the sign-in limit.

    Walks ``X-Forwarded-For`` from the right (the entry the nearest proxy appended) while the
    hop it came from is a trusted proxy; the first untrusted address is the client. Anything
    a client put in the header itself lies further left and is never reached. A malformed
    entry stops the walk at the last trusted hop.
    """
    peer = request.remote or "unknown"
    trusted = _networks(trusted_proxies)
    hop = _parse(peer)
    if not trusted or hop is None or not any(hop in net for net in trusted):
        return peer
    header = request.headers.get(FORWARDED_FOR, "")  # type: ignore[attr-defined]
    client = peer
    for entry in reversed([e for e in str(header).split(",") if e.strip()]):
        address = _parse(entry)
        if address is None:
            break
        client = str(address)
        if not any(address in net for net in trusted):
            break
    return client


@dataclass
class _Key:
    failures: int = 0
    wait_until: float = 0.0


@dataclass
class LoginLimiter:
    """Failed sign-ins per (username, client address), with a growing wait after a few.

    ``free_failures`` wrong passwords in a row cost nothing; each one after that makes the
    next try at that key wait ``base_delay_s`` doubled per extra failure, at most
    ``max_delay_s``. A success clears the key.
    """

    free_failures: int = 5
    base_delay_s: float = 2.0
    max_delay_s: float = 15 * 60
    forget_after_s: float = 30 * 60
    max_entries: int = 10_000
    # Per-process key for the map's keys and the log's tags (nothing else needs it).
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _clock: list = field(default_factory=lambda: [time.monotonic()])
    _keys: TTLCache = field(init=False)

    def __post_init__(self) -> None:
        # The cache's clock is set to the ``now`` each call passes in (tests pass their own).
        self._keys = TTLCache(self.max_entries, self.forget_after_s, timer=lambda: self._clock[0])

    def tag(self, value: str) -> str:
        """A short keyed hash: the same value gives the same tag in this process's logs."""
        raw = value.encode("utf-8", "surrogateescape")
        return hmac.new(self.secret, raw, hashlib.sha256).hexdigest()[:12]

    def _key(self, username: str, address: str) -> str:
        return self.tag(f"{username}\x00{address}")

    def _tick(self, now: Optional[float]) -> float:
        now = time.monotonic() if now is None else now
        self._clock[0] = now
        return now

    def retry_after(self, username: str, address: str, now: Optional[float] = None) -> int:
        """Seconds until a sign-in may be tried again at this key; 0 when it may be tried now."""
        now = self._tick(now)
        entry = self._keys.get(self._key(username, address))
        if entry is None or entry.wait_until <= now:
            return 0
        return int(entry.wait_until - now) + 1

    def failed(self, username: str, address: str, now: Optional[float] = None) -> None:
        now = self._tick(now)
        key = self._key(username, address)
        entry = self._keys.get(key) or _Key()
        entry.failures += 1
        extra = entry.failures - self.free_failures
        if extra >= 0:
            delay = min(self.max_delay_s, self.base_delay_s * 2 ** min(extra, 30))
            entry.wait_until = now + delay
        # Re-inserting restarts the entry's time to live: forgotten after a quiet spell.
        self._keys[key] = entry

    def succeeded(self, username: str, address: str) -> None:
        self._keys.pop(self._key(username, address), None)

    def entries(self) -> int:
        self._keys.expire()
        return len(self._keys)
