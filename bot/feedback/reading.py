"""Free-text comments for the console, and the audit of every reading (docs/feedback.md).

What a person wrote in their own words is shown to staff only in the console, to the roles
that read transcripts, and with the same audit as a transcript: before the words are read,
an entry naming who (``staff:<username>``), when and which comments (ids only, never their
words) is written and committed, so there is no way to read a comment whose reading was not
recorded. A transcript's openings go on its escalation's trail; a comment belongs to a
conversation that may have had no escalation, so the entries are a trail of their own,
``feedback_comment_views``, hash-chained the same way (each entry's hash covers the previous
one's) and checked by ``python -m bot.duty verify-comment-views``.

Shown: when, which set (service users or carers), the channel, the question, the words. Not
shown: the conversation id or any escalation: the page is for hearing what people said, not
for finding who said it. The report never reads any of this (``bot/report/feedback.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.feedback.questions import Questions
from bot.store.models import utcnow
from bot.store.models.feedback import FeedbackComment, FeedbackCommentView, FeedbackSurvey

GENESIS = "0" * 64
KIND = "comments_viewed"
REASON = "feedback comments opened in the duty console"
PAGE_SIZE = 50
RECENT_READINGS = 10
# Two readings at once both take the next seq; the second is refused by the unique seq (or,
# on SQLite, finds the database written since it read) and tries again.
APPEND_TRIES = 5


@dataclass(frozen=True)
class Comment:
    id: int
    at: dt.datetime
    set_name: str
    channel: str
    question: str  # the question's text in the questions file, or its id when gone
    text: str


@dataclass
class CommentsPage:
    comments: list[Comment] = field(default_factory=list)
    older: Optional[int] = None  # ``before`` for the next (older) page
    recorded: Optional[int] = None  # seq of the audit entry written for this page
    readings: list[dict[str, Any]] = field(default_factory=list)  # the latest entries


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)  # SQLite: naive UTC


def entry_hash(prev: str, seq: int, at: dt.datetime, actor: str, kind: str, reason: str,
               data: dict) -> str:
    payload = json.dumps(
        {"prev": prev, "seq": seq,
         "at": _aware(at).astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
         "actor": actor, "kind": kind, "reason": reason, "data": data},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _append(session: Session, actor: str, data: dict, at: dt.datetime) -> FeedbackCommentView:
    last = session.execute(
        select(FeedbackCommentView).order_by(FeedbackCommentView.seq.desc()).limit(1)
    ).scalar_one_or_none()
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    entry = FeedbackCommentView(seq=seq, at=at, actor=actor, kind=KIND, reason=REASON, data=data,
                                prev_hash=prev,
                                hash=entry_hash(prev, seq, at, actor, KIND, REASON, data))
    session.add(entry)
    session.flush()
    return entry


def record_reading(engine: Engine, actor: str, comment_ids: list[int],
                   now: Optional[dt.datetime] = None) -> int:
    """Write and commit the audit entry for ``actor`` reading ``comment_ids``; its seq."""
    data = {"comment_ids": list(comment_ids)}
    for attempt in range(APPEND_TRIES):
        try:
            with Session(engine, future=True) as session, session.begin():
                return _append(session, actor, data, now or utcnow()).seq
        except (sa_exc.IntegrityError, sa_exc.OperationalError):
            if attempt == APPEND_TRIES - 1:
                raise
    raise AssertionError("unreachable")


def _question_texts(questions: Optional[Questions]) -> dict[str, str]:
    if questions is None:
        return {}
    texts = {q.id: q.text for qs in questions.sets.values() for q in qs}
    if questions.free_text is not None:
        texts[questions.free_text.id] = questions.free_text.text
    return texts


def _page_ids(session: Session, before: Optional[int], limit: int) -> list[int]:
    stmt = select(FeedbackComment.id).order_by(FeedbackComment.id.desc()).limit(limit + 1)
    if before is not None:
        stmt = stmt.where(FeedbackComment.id < before)
    return list(session.execute(stmt).scalars())


def readings(engine: Engine, limit: int = RECENT_READINGS) -> list[dict[str, Any]]:
    """The latest audit entries, newest first: who read how many comments, when."""
    with Session(engine, future=True) as session:
        rows = session.execute(
            select(FeedbackCommentView).order_by(FeedbackCommentView.seq.desc()).limit(limit)
        ).scalars().all()
        return [{"seq": r.seq, "at": _aware(r.at), "actor": r.actor,
                 "count": len((r.data or {}).get("comment_ids") or [])} for r in rows]


def read_page(engine: Engine, actor: str, before: Optional[int], questions: Optional[Questions],
              limit: int = PAGE_SIZE, now: Optional[dt.datetime] = None) -> CommentsPage:
    """One page of comments, newest first (``before``: only comments with a smaller id).

    Which comments are on the page is read first (ids only); the audit entry naming them is
    committed; only then are their words read. A page with no comments writes no entry
    (nothing was read)."""
    with Session(engine, future=True) as session:
        ids = _page_ids(session, before, limit)
    older = ids[limit - 1] if len(ids) > limit else None
    ids = ids[:limit]
    page = CommentsPage(older=older)
    if ids:
        page.recorded = record_reading(engine, actor, ids, now)
        texts = _question_texts(questions)
        with Session(engine, future=True) as session:
            rows = session.execute(
                select(FeedbackComment, FeedbackSurvey.set_name, FeedbackSurvey.channel)
                .join(FeedbackSurvey, FeedbackSurvey.id == FeedbackComment.survey_id)
                .where(FeedbackComment.id.in_(ids))
                .order_by(FeedbackComment.id.desc())
            ).all()
            page.comments = [
                Comment(c.id, _aware(c.at), set_name, channel,
                        texts.get(c.question_id, c.question_id), c.text)
                for c, set_name, channel in rows
            ]
    page.readings = readings(engine)
    return page


def verify(engine: Engine) -> Optional[int]:
    """The seq of the first broken entry of the readings' trail, or None when it is intact."""
    prev, expected = GENESIS, 1
    with Session(engine, future=True) as session:
        for r in session.execute(
            select(FeedbackCommentView).order_by(FeedbackCommentView.seq)
        ).scalars():
            computed = entry_hash(prev, r.seq, r.at, r.actor, r.kind, r.reason, r.data)
            if r.seq != expected or r.prev_hash != prev or r.hash != computed:
                return r.seq
            prev, expected = r.hash, expected + 1
    return None
