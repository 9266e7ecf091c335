"""The leased work queue (``bot/store/queue.py``) on a table of its own, on SQLite and on the
real PostgreSQL: what the inbox, the outbox and the alert jobs rely on."""

from __future__ import annotations

import datetime as dt
import select as io_select
import threading
import time

import psycopg2
import pytest
from sqlalchemy import Column, DateTime, Integer, String, bindparam, insert, select
from sqlalchemy.orm import declarative_base

from bot.store.db import get_engine, transaction
from bot.store.models import utcnow
from bot.store.queue import LeasedQueue, notify

Base = declarative_base()


class Work(Base):
    """A stand-in work table, created only in these tests' databases."""

    __tablename__ = "test_leased_work"
    id = Column(Integer, primary_key=True)
    kind = Column(String(16), nullable=False, default="plain")
    state = Column(String(16), nullable=False)
    holder = Column(String(64), nullable=True)
    held_until = Column(DateTime(timezone=True), nullable=True)
    tries = Column(Integer, nullable=False, default=0)
    done_at = Column(DateTime(timezone=True), nullable=True)
    note = Column(String(32), nullable=True)


LONG = dt.timedelta(seconds=60)
PAST = dt.timedelta(seconds=-1)  # a lease that has already run out


@pytest.fixture
def queue(db_url) -> LeasedQueue:
    Base.metadata.create_all(get_engine())
    # Column names other than the project's defaults: the queue is told them.
    return LeasedQueue(Work, ready="waiting", claimed="taken", status="state", owner="holder",
                       lease_until="held_until", attempts="tries", lease_s=60.0)


def add(n: int, kind: str = "plain") -> list[int]:
    with transaction() as s:
        return [s.execute(insert(Work).values(state="waiting", kind=kind, tries=0)
                          ).inserted_primary_key[0] for _ in range(n)]


def rows() -> dict[int, Work]:
    with transaction() as s:
        return {w.id: w for w in s.execute(select(Work)).scalars()}


def ids(claimed) -> list[int]:
    return [r.id for r in claimed]


def test_a_claim_takes_ready_rows_in_order_and_marks_them_held(queue):
    first = add(5)
    claim = queue.claimer()
    assert ids(claim("a", limit=3)) == first[:3]
    held = rows()
    assert [held[i].state for i in first] == ["taken"] * 3 + ["waiting"] * 2
    assert {held[i].holder for i in first[:3]} == {"a"}
    assert all(held[i].tries == 1 for i in first[:3])
    until = held[first[0]].held_until.replace(tzinfo=dt.timezone.utc)
    assert dt.timedelta(seconds=55) < until - utcnow() <= LONG  # the queue's own lease
    # The rest, then nothing.
    assert ids(claim("b", limit=3)) == first[3:]
    assert claim("c", limit=3) == []


def test_two_claimers_never_get_the_same_row(queue):
    """Claimer B runs its whole claim between A's scan and A's take: on PostgreSQL it passes
    over the rows A has locked, on SQLite A's compare-and-set finds them taken. Either way no
    row is held by both."""
    add(4)
    claim = queue.claimer()
    got: dict[str, list[int]] = {}
    b = threading.Thread(target=lambda: got.__setitem__("b", ids(claim("b", limit=4))))

    def choose_after_b(rows_seen):
        b.start()
        b.join(5.0)
        got["b waited for a"] = b.is_alive()  # blocked on A's row locks: not skipped
        return [r.id for r in rows_seen]

    got["a"] = ids(claim("a", limit=4, choose=choose_after_b))
    b.join()
    assert not got["b waited for a"]
    assert got["a"] or got["b"]
    assert not set(got["a"]) & set(got["b"])
    held = rows()
    for owner in ("a", "b"):
        assert all(held[i].holder == owner and held[i].state == "taken" for i in got[owner])


def test_claimers_in_threads_share_out_the_rows_exactly_once(queue):
    every = add(30)
    claim = queue.claimer()
    got: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def claimer(name: str) -> None:
        barrier.wait()
        mine: list[int] = []
        while True:
            batch = ids(claim(name, limit=3))
            if not batch:
                break
            mine += batch
        got[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [i for mine in got.values() for i in mine]
    assert sorted(taken) == every  # each row once, none left
    held = rows()
    assert all(held[i].holder == name for name, mine in got.items() for i in mine)


def test_choose_where_and_guard(queue):
    plain = add(2)
    urgent = add(2, kind="urgent")
    # Only "urgent" rows are candidates; of them the caller chooses the last.
    claim = queue.claimer(Work.id, Work.kind, where=(Work.kind == bindparam("wanted"),))
    seen: list[list[str]] = []

    def choose(candidates):
        seen.append([c.kind for c in candidates])
        return [candidates[-1].id]

    assert ids(claim("a", choose=choose, params={"wanted": "urgent"})) == [urgent[1]]
    assert seen == [["urgent", "urgent"]]
    # A guard the UPDATE checks per row: here, never the first plain row.
    guarded = queue.claimer(guard=Work.id != plain[0])
    assert ids(guarded("b", limit=10)) == [plain[1], urgent[0]]


def test_an_expired_lease_is_reclaimed(queue):
    dead, alive = add(2)
    claim = queue.claimer()
    claim("dead", limit=1, lease=PAST)
    claim("alive", limit=1)
    assert queue.reclaim_expired() == 1
    held = rows()
    assert (held[dead].state, held[dead].holder, held[dead].held_until) == ("waiting", None, None)
    assert held[dead].tries == 1  # the dead owner's attempt still counts
    assert (held[alive].state, held[alive].holder) == ("taken", "alive")
    # Taken again by the next claimer, as a second attempt.
    [again] = claim("next", limit=5)
    assert again.id == dead and rows()[dead].tries == 2
    assert queue.reclaim_expired() == 0


def test_a_claim_may_take_expired_leases_itself(queue):
    [row] = add(1)
    claim = queue.claimer(include_expired=True)
    claim("dead", limit=1, lease=PAST)
    [again] = claim("next", limit=1)
    assert again.id == row
    assert (rows()[row].holder, rows()[row].tries) == ("next", 2)
    # A live lease is not taken.
    assert claim("third", limit=1) == []


def test_renew_extends_the_lease(queue):
    mine, other = add(2)
    claim = queue.claimer()
    claim("a", limit=1, lease=PAST)
    claim("b", limit=1, lease=PAST)
    assert queue.renew("a", [mine, other]) == 1  # only what "a" holds
    until = rows()[mine].held_until.replace(tzinfo=dt.timezone.utc)
    assert until - utcnow() > dt.timedelta(seconds=55)
    assert queue.renew("a", [mine], dt.timedelta(seconds=5)) == 1
    until = rows()[mine].held_until.replace(tzinfo=dt.timezone.utc)
    assert until - utcnow() < dt.timedelta(seconds=6)
    assert queue.reclaim_expired() == 1  # "b"'s, not the renewed one
    held = rows()
    assert (held[mine].state, held[mine].holder) == ("taken", "a")
    assert held[other].state == "waiting"
    assert queue.renew("a", []) == 0


def test_release_returns_work(queue):
    first, second = add(2)
    claim = queue.claimer()
    claim("a", limit=2)
    assert queue.release("someone else", [first, second]) == 0
    assert queue.release("a", [first]) == 1
    assert queue.release("a", [second], count_attempt=False) == 1
    held = rows()
    assert [(held[i].state, held[i].holder, held[i].held_until) for i in (first, second)] \
        == [("waiting", None, None)] * 2
    assert (held[first].tries, held[second].tries) == (1, 0)
    assert ids(claim("b", limit=2)) == [first, second]


def test_finish_closes_only_the_owners_row(queue):
    [row] = add(1)
    queue.claimer()("a", limit=1)
    now = utcnow()
    assert queue.finish("b", row, "done", note="not b's") is False
    assert rows()[row].state == "taken"
    assert queue.finish("a", row, "done", done_at=now, note="ok") is True
    done = rows()[row]
    assert (done.state, done.holder, done.held_until, done.note) == ("done", None, None, "ok")
    assert done.done_at is not None
    assert queue.finish("a", row, "done") is False  # once
    assert queue.reclaim_expired() == 0 and queue.claimer()("c", limit=1) == []


def test_release_and_reclaim_values(db_url):
    Base.metadata.create_all(get_engine())
    queue = LeasedQueue(Work, ready="waiting", claimed="taken", status="state", owner="holder",
                        lease_until="held_until", attempts=None,
                        release_values={"note": "released"}, reclaim_values={"note": "dead"})
    first, second = add(2)
    claim = queue.claimer(values={"note": bindparam("why")})
    claim("a", limit=1, params={"why": "claimed"})
    assert rows()[first].note == "claimed"
    assert rows()[first].tries == 0  # attempts=None: the caller counts them
    queue.release("a", [first])
    assert rows()[first].note == "released"
    claim("a", limit=2, lease=PAST, params={"why": "claimed"})
    queue.reclaim_expired()
    assert [rows()[i].note for i in (first, second)] == ["dead", "dead"]


def test_notify_is_sent_on_commit_only(pg_url):
    listener = psycopg2.connect(pg_url.replace("postgresql+psycopg2", "postgresql"))
    listener.autocommit = True
    try:
        listener.cursor().execute("LISTEN test_work")
        queue = LeasedQueue(Work, ready="waiting", claimed="taken", status="state",
                            owner="holder", lease_until="held_until", attempts="tries",
                            channel="test_work")
        with pytest.raises(RuntimeError):
            with transaction() as s:
                queue.announce(s.connection(), "rolled back")
                raise RuntimeError
        with transaction() as s:
            queue.announce(s, "urgent")
        # Delivered to the listener a moment after the commit: wait for it (2 s at most).
        deadline = time.monotonic() + 2.0
        while not listener.notifies and time.monotonic() < deadline:
            io_select.select([listener], [], [], 0.1)
            listener.poll()
        time.sleep(0.1)
        listener.poll()
        assert [n.payload for n in listener.notifies] == ["urgent"]
    finally:
        listener.close()


def test_notify_does_nothing_on_sqlite(sqlite_url):
    with transaction() as s:
        notify(s, "test_work", "")  # no error, nothing to send it to
