"""The SMS channel's database thread commits the jobs queued together once (dbthread.py).

Replies written while the thread is busy share a transaction; one bad job never loses the
others' writes; a failed commit is reported to every job in it and nothing is written twice.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from bot.sms import outbox
from bot.store import dbthread
from bot.store.dbthread import DbThread
from bot.store.models.sms import SmsOutbox
from bot.store.db import get_engine, group_safe, shared_transaction, transaction


@group_safe
def _enqueue_then_fail(pid: str) -> None:
    with shared_transaction():  # on its own, one transaction too, as group_safe asks
        outbox.enqueue(pid, "this must never be sent", "reply", None, 3)
        raise ValueError("a bad job")


def _bodies() -> dict[str, list[str]]:
    with transaction() as s:
        rows = s.execute(select(SmsOutbox.pseudonym, SmsOutbox.body).order_by(SmsOutbox.id))
        found: dict[str, list[str]] = {}
        for pid, body in rows:
            found.setdefault(pid, []).append(body)
        return found


async def _queued_together(db: DbThread, calls: list[tuple]) -> list:
    """Run ``calls`` as background jobs that wait in the queue while the thread is busy."""
    busy = threading.Event()
    blocker = asyncio.ensure_future(db.background(busy.wait, 5))
    tasks = [asyncio.ensure_future(db.background(fn, *args)) for fn, *args in calls]
    await asyncio.sleep(0.05)  # every job is in the queue behind the blocker
    busy.set()
    await blocker
    return await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def db_thread(db_url):
    db = DbThread("test-db")
    yield db
    db.close()


async def test_replies_queued_together_are_all_written_with_one_commit(db_thread):
    commits = []

    def count(_conn) -> None:
        commits.append(1)

    engine = get_engine()
    event.listen(engine, "commit", count)
    try:
        results = await _queued_together(db_thread, [
            (outbox.enqueue, f"person-{i}", f"reply {i}", "reply", None, 3) for i in range(6)
        ])
    finally:
        event.remove(engine, "commit", count)
    assert all(isinstance(r, list) and len(r) == 1 for r in results)
    assert len({r[0] for r in results}) == 6  # each caller got its own row's id
    assert _bodies() == {f"person-{i}": [f"reply {i}"] for i in range(6)}
    # The blocker (no database work) and one commit for the six replies.
    assert len(commits) == 1


async def test_one_failing_job_loses_nothing_of_the_others_and_only_its_caller_hears(db_thread):
    results = await _queued_together(db_thread, [
        (outbox.enqueue, "person-a", "first", "reply", None, 3),
        (_enqueue_then_fail, "person-b"),
        (outbox.enqueue, "person-c", "third", "reply", None, 3),
    ])
    assert isinstance(results[0], list)
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], list)
    assert _bodies() == {"person-a": ["first"], "person-c": ["third"]}


async def test_a_failed_commit_reaches_every_job_and_nothing_is_written_twice(
        db_thread, monkeypatch):
    class CommitLost(Exception):
        pass

    fail = {"next": True}

    @contextmanager
    def commit_fails_once():
        with shared_transaction() as session:
            yield session
            if fail.pop("next", False):
                raise CommitLost  # rolls the shared transaction back, as a lost commit would

    monkeypatch.setattr(dbthread, "shared_transaction", commit_fails_once)
    results = await _queued_together(db_thread, [
        (outbox.enqueue, f"person-{i}", f"reply {i}", "reply", None, 3) for i in range(3)
    ])
    assert all(isinstance(r, CommitLost) for r in results)
    # Not run again one by one: after a real lost commit, that could write them twice.
    assert _bodies() == {}
    # The thread goes on serving.
    assert await db_thread.background(outbox.enqueue, "person-9", "later", "reply", None, 3)
    assert _bodies() == {"person-9": ["later"]}
