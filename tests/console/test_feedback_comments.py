"""``/duty/feedback``: the survey's free-text comments, shown only in the console, only to the
roles that read transcripts, each reading audited as a transcript's opening is (an entry with
who and which comments, committed before the words are read; hash-chained, verified by
``python -m bot.duty verify-comment-views``). That the report never shows one is
tests/report/test_feedback_figure.py's."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from bot.duty.__main__ import main as duty_main
from bot.feedback import questions, reading, store
from bot.store import db
from bot.store.models.feedback import FeedbackComment, FeedbackCommentView

from .conftest import post_login, sign_in

Q = questions.load()
NOW = dt.datetime(2026, 12, 7, 22, 0, tzinfo=dt.timezone.utc)  # noqa: UP017  (3.10)
WORDS = "The woman I spoke to <b>really</b> listened.\nThank you."


def comment(conversation: str, words: str, audience: str | None = None,
            channel: str = "sms", at: dt.datetime = NOW) -> None:
    """A whole survey answered, ending with ``words`` for the free-text question."""
    store.offer(conversation, channel, "goodbye", Q, audience=audience, now=at)
    asked = Q.for_audience(audience)[1]
    for i, text in enumerate(["yes"] + ["skip"] * (len(asked) - 1) + [words]):
        store.handle(conversation, text, "none", Q, now=at + dt.timedelta(seconds=i))


def readings() -> list[tuple[str, list[int]]]:
    with db.transaction() as s:
        return [(r.actor, r.data["comment_ids"]) for r in s.execute(
            select(FeedbackCommentView).order_by(FeedbackCommentView.seq)).scalars()]


def comment_ids() -> list[int]:
    with db.transaction() as s:
        return list(s.execute(select(FeedbackComment.id).order_by(FeedbackComment.id)).scalars())


@pytest.mark.parametrize("role", ["peer_worker", "duty_manager"])
async def test_staff_who_read_transcripts_read_comments_and_each_reading_is_audited(
    client, make_staff, role
):
    comment("sms-a", WORDS)
    comment("web-b", "Could the chat say sooner that it is a bot?", audience="carers",
            channel="socketio")
    make_staff("ellen", role)
    await sign_in(client, "ellen")
    for _ in range(2):
        resp = await client.get("/duty/feedback")
        assert resp.status == 200
    page = await resp.text()
    # Escaped, never HTML; newest first; who (by set) and how, never which conversation.
    assert "The woman I spoke to &lt;b&gt;really&lt;/b&gt; listened.\nThank you." in page
    assert page.index("sooner that it is a bot") < page.index("really")
    assert "Carer, web chat" in page and "Service user, SMS" in page
    assert f"Asked: {Q.free_text.text}" in page
    assert "sms-a" not in page and "web-b" not in page
    # Every opening is on the trail, with who and which comments (ids only, not the words).
    ids = sorted(comment_ids(), reverse=True)
    assert readings() == [("staff:ellen", ids), ("staff:ellen", ids)]
    assert "staff:ellen" in page  # the page lists who has read comments
    assert reading.verify(db.get_engine()) is None


@pytest.mark.parametrize("role, house", [("admin", None), ("sanctuary_volunteer", "harbour_house"),
                                         ("commissioner", None)])
async def test_other_roles_are_refused_and_nothing_is_read(client, make_staff, role, house):
    comment("sms-a", WORDS)
    make_staff("sam", role, house=house)
    signed = await post_login(client, "sam")
    assert signed.status == 303
    resp = await client.get("/duty/feedback", allow_redirects=False)
    assert resp.status == 403
    assert "listened" not in await resp.text()
    assert readings() == []
    home = await (await client.get(signed.headers["Location"])).text()
    assert "/duty/feedback" not in home  # and no link to it


async def test_without_a_session_the_page_sends_you_to_sign_in(client):
    comment("sms-a", WORDS)
    resp = await client.get("/duty/feedback", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert readings() == []


async def test_the_console_navigation_links_to_the_page(client, make_staff):
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get("/duty")).text()
    nav = page[page.index('<nav aria-label="Console">'):page.index("</nav>")]
    assert '<a href="/duty/feedback">Feedback comments</a>' in nav


async def test_the_reading_is_recorded_before_the_words_are_read(client, make_staff, monkeypatch):
    comment("sms-a", WORDS)
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    real = reading._question_texts

    def fail(*args):  # the words are read just after this
        raise RuntimeError("the database went away")

    monkeypatch.setattr(reading, "_question_texts", fail)
    resp = await client.get("/duty/feedback")
    assert resp.status == 500 and "listened" not in await resp.text()
    # Committed already: nobody can read a comment without the reading on the trail.
    assert readings() == [("staff:ellen", comment_ids())]
    monkeypatch.setattr(reading, "_question_texts", real)


async def test_older_comments_a_page_at_a_time_each_page_audited(client, make_staff, monkeypatch):
    monkeypatch.setattr(reading, "PAGE_SIZE", 3)
    for i in range(5):
        comment(f"sms-{i}", f"comment number {i}", at=NOW + dt.timedelta(minutes=i))
    ids = sorted(comment_ids(), reverse=True)
    make_staff("ellen", "duty_manager")
    await sign_in(client, "ellen")
    first = await (await client.get("/duty/feedback")).text()
    assert [f"comment number {i}" in first for i in range(5)] == [False, False, True, True, True]
    older = re.search(r'href="(/duty/feedback\?before=\d+)"', first).group(1)
    second = await (await client.get(older)).text()
    assert [f"comment number {i}" in second for i in range(5)] == [True, True, False, False, False]
    assert "Older comments</a>" not in second and 'href="/duty/feedback">Latest comments' in second
    assert readings() == [("staff:ellen", ids[:3]), ("staff:ellen", ids[3:])]
    assert (await client.get("/duty/feedback?before=x1")).status == 400


async def test_no_comments_no_reading_recorded(client, make_staff):
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    page = await (await client.get("/duty/feedback")).text()
    assert "Nobody has written a comment yet." in page
    assert readings() == []


async def test_a_changed_reading_breaks_the_chain_and_the_command_says_where(
    client, make_staff, db_url, capsys
):
    comment("sms-a", WORDS)
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    for _ in range(3):
        await client.get("/duty/feedback")
    assert duty_main(["verify-comment-views"]) == 0
    assert "intact" in capsys.readouterr().out
    with db.transaction() as s:
        s.execute(update(FeedbackCommentView).where(FeedbackCommentView.seq == 2)
                  .values(actor="staff:someone-else"))
    assert duty_main(["verify-comment-views"]) == 1
    assert "BROKEN at entry seq 2" in capsys.readouterr().out


async def test_forgotten_people_s_comments_are_gone_from_the_page(client, make_staff):
    comment("sms-a", WORDS)
    store.forget("sms-a")
    make_staff("ellen", "peer_worker")
    await sign_in(client, "ellen")
    assert "listened" not in await (await client.get("/duty/feedback")).text()

