"""A leased work queue on a table: claim, renew, release, finish, reclaim (and NOTIFY).

The inbox (``bot/channels/inbox.py``), the outbox (``bot/sms/outbox.py``) and the alert jobs
(``bot/escalation/dispatch.py``) are each a table of work rows that any number of processes
take from. A row is *ready*, or *claimed* by one owner until its lease runs out:

- ``claim``: candidates are read (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so claimers pass
  over each other's rows instead of queueing behind them), the caller may choose among them,
  then ONE compare-and-set UPDATE takes the chosen rows that are still ready and passes the
  caller's guard, and the rows this owner now holds are read back. SQLite has no row locks
  and one writer at a time: the compare-and-set (``status = ready`` in the UPDATE itself) and
  the read back by owner are its safe fallback, so two claimers never hold one row.
- ``renew``: the owner's lease on rows it still holds runs on from now.
- ``release``: the owner gives rows back, ready again (a failed attempt, a clean shutdown).
- ``finish``: the owner closes a row with its final status.
- ``reclaim_expired``: rows whose owner stopped renewing (it died) are ready again.

Everything runs in ``transaction()``, so inside ``shared_transaction`` (the SMS channel's group
commit) it joins that one. Statements are built once, here, not per call: building and
cache-keying a statement each time cost more CPU than running it, in threads that share the
GIL with the bot's turns. Nothing here reads or logs a row's content.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, text, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from bot.store.db import group_safe, transaction
from bot.store.models import utcnow

# The parameters every claim statement is given; a caller's own (``params``) come beside them.
# ``ids`` may be used in a caller's ``guard`` (the rows claimed together), ``now`` anywhere.
IDS, OWNER, UNTIL, NOW = "ids", "owner", "until", "now"

Choose = Callable[[list[Row]], Sequence[int]]


def notify(conn: Any, channel: str, payload: str = "") -> None:
    """``NOTIFY channel, payload`` on PostgreSQL, sent when the caller's transaction commits
    (dropped on a rollback); nothing elsewhere. Anyone connected to the database may LISTEN:
    the payload must never be text, numbers or references."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    if bind.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": channel, "payload": payload})


_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class LeasedQueue:
    """The rows of ``model`` as a queue of leased work.

    ``ready`` / ``claimed``: the values of the ``status`` column for work waiting and work an
    owner holds. ``owner`` and ``lease_until`` name the lease's columns. ``attempts``: a column
    counted up by each claim (None: the caller counts attempts itself).
    ``release_values`` / ``reclaim_values``: more columns set when rows go back to ready
    (``bindparam("now")`` is the time of the call). ``lease_s``: the lease a claim or a renewal
    gives, unless the call names another. ``channel``: the PostgreSQL NOTIFY channel on which
    new work is announced (``announce``), if any.
    """

    def __init__(
        self,
        model: Any,
        *,
        ready: str,
        claimed: str,
        status: str = "status",
        owner: str = "lease_owner",
        lease_until: str = "lease_until",
        attempts: str | None = "attempts",
        release_values: Mapping[str, Any] | None = None,
        reclaim_values: Mapping[str, Any] | None = None,
        lease_s: float = 30.0,
        channel: str | None = None,
    ) -> None:
        self.model = model
        self.ready, self.claimed = ready, claimed
        self.id = model.id
        self.status = getattr(model, status)
        self.owner = getattr(model, owner)
        self.lease_until = getattr(model, lease_until)
        self.attempts = getattr(model, attempts) if attempts else None
        self._owner_key, self._until_key = owner, lease_until
        self._attempts_key = attempts
        self.lease = dt.timedelta(seconds=lease_s)
        self.channel = channel
        free = {owner: None, lease_until: None}
        held = and_(self.id.in_(bindparam(IDS, expanding=True)),
                    self.owner == bindparam(OWNER), self.status == claimed)
        self._renew = update(model).where(held).values({lease_until: bindparam(UNTIL)})
        back = {self.status.key: ready, **free, **dict(release_values or {})}
        self._release = update(model).where(held).values(back)
        self._release_unrun = self._release
        if self.attempts is not None:
            self._release_unrun = update(model).where(held).values(
                {**back, attempts: self.attempts - 1})
        self._reclaim = (
            update(model)
            .where(self.status == claimed, self.lease_until < bindparam(NOW))
            .values({self.status.key: ready, **free, **dict(reclaim_values or {})})
        )
        self._finishes: dict[tuple[str, ...], Any] = {}

    # -- claiming ----------------------------------------------------------------------------

    def claimer(
        self,
        *columns: Any,
        where: Sequence[Any] = (),
        order_by: Sequence[Any] = (),
        scan_limit: int | None = 200,
        guard: Any = None,
        values: Mapping[str, Any] | None = None,
        read: Sequence[Any] | Any = (),
        returning: bool = False,
        include_expired: bool = False,
    ) -> Claimer:
        """A claim of one shape, its statements built once (see ``Claimer``).

        ``columns``: what the scan reads of each candidate (default: the id), for the caller's
        ``choose``. ``where``: what makes a ready row a candidate (re-checked by the UPDATE).
        ``order_by``: candidates' order (default: id). ``scan_limit``: candidates read per
        claim (None: as many as the claim's ``limit``). ``guard``: an extra condition of the
        UPDATE, per row (e.g. no earlier unfinished row of its conversation); it may use
        ``bindparam("ids", expanding=True)``. ``values``: more columns the claim sets.
        ``read``: the claimed rows' columns to return, or a whole SELECT of the caller's given
        ``ids``, ``owner`` (default: the ids). ``returning``: on PostgreSQL, read them from the
        UPDATE itself (one round trip less), sorted by id. ``include_expired``: rows another
        owner holds past its lease are candidates too (a claim reclaims them itself).
        """
        return Claimer(self, columns or (self.id,), tuple(where), tuple(order_by) or (self.id,),
                       scan_limit, guard, dict(values or {}), read, returning, include_expired)

    # -- the lease holder's calls, each in a transaction of its own (or the shared one) --------

    @group_safe
    def renew(self, owner: str, ids: Sequence[int], lease: dt.timedelta | None = None) -> int:
        """The lease on those of ``ids`` that ``owner`` still holds runs on from now."""
        if not ids:
            return 0
        until = utcnow() + (self.lease if lease is None else lease)
        with transaction() as s:
            result = s.connection().execute(self._renew,
                                            {IDS: list(ids), OWNER: owner, UNTIL: until})
            return result.rowcount or 0

    @group_safe
    def release(self, owner: str, ids: Sequence[int], *, count_attempt: bool = True) -> int:
        """Give back those of ``ids`` that ``owner`` holds: ready again, at once.

        ``count_attempt=False``: the claim does not count as an attempt (the work was never
        run: a clean shutdown, a chain stopped before it)."""
        if not ids:
            return 0
        statement = self._release if count_attempt else self._release_unrun
        with transaction() as s:
            result = s.connection().execute(statement,
                                            {IDS: list(ids), OWNER: owner, NOW: utcnow()})
            return result.rowcount or 0

    @group_safe
    def finish(self, owner: str, row_id: int, status: str, **values: Any) -> bool:
        """Close the row ``owner`` holds with ``status`` (and ``values``); False when the
        owner no longer holds it (its lease ran out and another took it)."""
        statement = self._finish_statement(tuple(sorted(values)))
        params = {"v_" + k: v for k, v in values.items()}
        params.update(row_id=row_id, owner=owner, new_status=status)
        with transaction() as s:
            return bool(s.connection().execute(statement, params).rowcount)

    def _finish_statement(self, columns: tuple[str, ...]) -> Any:
        statement = self._finishes.get(columns)
        if statement is None:
            # The parameters are prefixed: a bind named like its column is reserved.
            statement = self._finishes[columns] = (
                update(self.model)
                .where(self.id == bindparam("row_id"), self.owner == bindparam(OWNER),
                       self.status == self.claimed)
                .values({self.status.key: bindparam("new_status"), self._owner_key: None,
                         self._until_key: None, **{c: bindparam("v_" + c) for c in columns}})
            )
        return statement

    @group_safe
    def reclaim_expired(self) -> int:
        """Rows whose owner stopped renewing its lease (it died): ready again."""
        with transaction() as s:
            return s.connection().execute(self._reclaim, {NOW: utcnow()}).rowcount or 0

    def announce(self, conn: Any, payload: str = "") -> None:
        """NOTIFY this queue's channel when the caller's transaction commits (PostgreSQL)."""
        if self.channel is not None:
            notify(conn, self.channel, payload)


class Claimer:
    """One shape of claim on a ``LeasedQueue``: scan, choose, take, read back (see there)."""

    group_safe = True  # a call is database work through ``transaction()`` only (db.group_safe)

    def __init__(self, queue: LeasedQueue, columns: tuple, where: tuple, order_by: tuple,
                 scan_limit: int | None, guard: Any, values: dict, read: Any, returning: bool,
                 include_expired: bool) -> None:
        self.queue = q = queue
        ready = and_(q.status == q.ready, *where)
        if include_expired:
            ready = or_(ready, and_(q.status == q.claimed, q.lease_until < bindparam(NOW)))
        self._columns, self._order_by, self._scan_limit = columns, order_by, scan_limit
        self._candidate = ready
        self._scans: dict[tuple[bool, int], Any] = {}
        conditions = [q.id.in_(bindparam(IDS, expanding=True)), ready]
        if guard is not None:
            conditions.append(guard)
        sets = {q.status.key: q.claimed, q._owner_key: bindparam(OWNER),
                q._until_key: bindparam(UNTIL), **values}
        if q.attempts is not None:
            sets[q._attempts_key] = q.attempts + 1
        self._take = update(q.model).where(*conditions).values(sets)
        held = and_(q.id.in_(bindparam(IDS, expanding=True)), q.owner == bindparam(OWNER),
                    q.status == q.claimed)
        if isinstance(read, (tuple, list)):
            cols = tuple(read) or (q.id,)
            self._read = select(*cols).where(held).order_by(*order_by)
            self._returning = self._take.returning(*cols) if returning else None
        else:
            self._read, self._returning = read, None  # the caller's own SELECT

    def _scan(self, postgres: bool, limit: int) -> Any:
        n = self._scan_limit or limit
        scan = self._scans.get((postgres, n))
        if scan is None:
            scan = (select(*self._columns).where(self._candidate)
                    .order_by(*self._order_by).limit(n))
            if postgres:
                # Rows another claimer is taking are passed over, not waited for.
                scan = scan.with_for_update(skip_locked=True)
            self._scans[postgres, n] = scan
        return scan

    def __call__(self, owner: str, *, limit: int = 16, lease: dt.timedelta | None = None,
                 choose: Choose | None = None, params: Mapping[str, Any] | None = None,
                 now: dt.datetime | None = None) -> list[Row]:
        """Claim for ``owner`` up to ``limit`` rows (``choose``: which of the candidates, in
        order; default the first ``limit``); the rows it now holds, read back.

        ``params``: the values of the caller's own bind parameters in ``where``, ``guard``,
        ``values`` and ``read``. ``lease``: default the queue's."""
        if limit <= 0:
            return []
        now = now or utcnow()
        bound = {NOW: now, **(params or {})}
        with transaction() as s:
            conn = s.connection()
            postgres = conn.dialect.name == "postgresql"
            rows = conn.execute(self._scan(postgres, limit), bound).all()
            if not rows:
                return []
            ids = list(choose(rows)) if choose is not None else [r[0] for r in rows[:limit]]
            if not ids:
                return []
            lease = self.queue.lease if lease is None else lease
            bound.update({IDS: ids, OWNER: owner, UNTIL: now + lease})
            return self._take_and_read(conn, bound, postgres)

    def _take_and_read(self, conn: Connection, bound: dict[str, Any],
                       postgres: bool) -> list[Row]:
        # One statement for the whole batch keeps SQLite's single write lock short.
        if postgres and self._returning is not None:
            return sorted(conn.execute(self._returning, bound).all(), key=lambda r: r[0])
        conn.execute(self._take, bound)
        return conn.execute(self._read, bound).all()
