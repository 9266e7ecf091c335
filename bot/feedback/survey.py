"""The survey as a pure state machine: one message in, what to say and what to keep out.

No database, no Rasa: ``bot/feedback/store.py`` keeps the state in ``feedback_surveys`` and the
channels (``bot/channels/feedback_turn.py``) carry the replies. Every rule of docs/feedback.md
that concerns a single message is here, so the tests can read it:

- **Risk always wins.** A message the risk detector reads as urgent or imminent ends the
  survey (``risk``) and goes down the normal risk path (``passthrough``): nothing of it is
  stored as an answer.
- After the offer, YES starts the questions, NO / SKIP / STOP declines; anything else drops the
  offer silently and the message goes to the dialogue (the person wanted to keep talking).
- A question is answered by its number or word; SKIP passes it; STOP ends the survey.
  An answer that is not a choice gets the question again once; a second one ends the survey
  politely, and that message then goes to the dialogue, so nothing said is lost.
- The free-text question takes any words; they come back as ``comment``, to be stored apart
  (never logged, never an ``answer``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Optional, Tuple

from bot.feedback.questions import Question, Questions, normalise

# Stages of a survey (``feedback_surveys.status``).
OFFERED = "offered"  # the offer was sent; no answer yet
ASKING = "asking"  # a question is out
# Ends: the survey never speaks again.
DONE = "done"  # every question asked
DECLINED = "declined"  # no to the offer
LAPSED = "lapsed"  # the person said something else after the offer, or never answered
STOPPED = "stopped"  # STOP during the questions, or an opt-out
GAVE_UP = "gave_up"  # two answers in a row that were not choices
RISK = "risk"  # urgent or imminent risk: the normal risk path took over
LIVE = (OFFERED, ASKING)
ENDS = (DONE, DECLINED, LAPSED, STOPPED, GAVE_UP, RISK)

URGENT_LEVELS = frozenset({"urgent", "imminent"})
YES = frozenset({"yes", "y", "yeah", "yep", "ok", "okay", "sure", "go on", "go ahead", "fine"})
NO = frozenset({"no", "n", "nope", "no thanks", "no thank you", "not now", "skip", "stop"})
SKIP = "skip"
STOP = "stop"

AGAIN = "Sorry, I didn't catch that."


@dataclass(frozen=True)
class State:
    status: str
    set_name: str
    position: int = 0  # index into the set's questions (free text last)
    retried: bool = False  # the current question has been asked a second time


@dataclass(frozen=True)
class Prompt:
    """One message to the person: the text (the SMS, and the web chat's fallback) and the
    choices for buttons (web chat)."""

    text: str
    choices: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    question_id: str
    criterion: str
    choice: Optional[int]  # 1-based position in the question's choices; None: skipped
    value: Optional[str]  # the choice's word as the file had it; None: skipped


@dataclass(frozen=True)
class Outcome:
    state: State
    replies: Tuple[Prompt, ...] = ()
    answer: Optional[Answer] = None
    comment: Optional[str] = None  # free text: stored apart, never logged
    passthrough: bool = False  # the message also goes to the dialogue


def offer(questions: Questions) -> Prompt:
    return Prompt(questions.offer, ("yes", "no"))


def question_prompt(question: Question) -> Prompt:
    return Prompt(question.prompt(), question.choices + ((SKIP,) if question.choices else ()))


def first(questions: Questions, audience: Optional[str]) -> State:
    """A survey just offered to a conversation whose audience is ``audience``."""
    name, _ = questions.for_audience(audience)
    return State(OFFERED, name)


def _asked(questions: Questions, state: State) -> Tuple[Question, ...]:
    return questions.for_audience(state.set_name)[1]


def choice_of(question: Question, text: str) -> Optional[int]:
    """The 1-based choice ``text`` names, by number or word; None when it names none."""
    said = normalise(text)
    if said.isdigit():
        n = int(said)
        return n if 1 <= n <= len(question.choices) else None
    for i, choice in enumerate(question.choices, 1):
        if said == normalise(choice):
            return i
    return None


def _next(questions: Questions, state: State, position: int, **kept) -> Outcome:
    asked = _asked(questions, state)
    if position >= len(asked):
        return Outcome(replace(state, status=DONE, position=position, retried=False),
                       (Prompt(questions.thanks),), **kept)
    return Outcome(replace(state, status=ASKING, position=position, retried=False),
                   (question_prompt(asked[position]),), **kept)


def reply(questions: Questions, state: State, text: str, risk_level: str = "none") -> Outcome:
    """The survey after the person's message ``text``, which the risk detector read as
    ``risk_level``."""
    if state.status not in LIVE:
        return Outcome(state, passthrough=True)
    if risk_level in URGENT_LEVELS:
        return Outcome(replace(state, status=RISK), passthrough=True)
    said = normalise(text)
    if state.status == OFFERED:
        if said in YES:
            return _next(questions, state, 0)
        if said in NO:
            return Outcome(replace(state, status=DECLINED), (Prompt(questions.ended),))
        return Outcome(replace(state, status=LAPSED), passthrough=True)

    asked = _asked(questions, state)
    question = asked[state.position]
    if said == STOP:
        return Outcome(replace(state, status=STOPPED), (Prompt(questions.ended),))
    if said == SKIP:
        return _next(questions, state, state.position + 1,
                     answer=None if question.free_text else
                     Answer(question.id, question.criterion or "", None, None))
    if question.free_text:
        words = text.strip()
        return _next(questions, state, state.position + 1, comment=words or None)
    choice = choice_of(question, text)
    if choice is not None:
        answer = Answer(question.id, question.criterion or "", choice,
                        question.choices[choice - 1])
        return _next(questions, state, state.position + 1, answer=answer)
    if not state.retried:
        again = question_prompt(question)
        return Outcome(replace(state, retried=True),
                       (Prompt(f"{AGAIN} {again.text}", again.choices),))
    return Outcome(replace(state, status=GAVE_UP), (Prompt(questions.ended),), passthrough=True)


# Who may be asked (the rest of docs/feedback.md's rules, over what the store has read).
WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class Standing:
    """What the store knows about a person and their conversation, for ``may_ask``."""

    last_asked_at: Optional[dt.datetime] = None
    do_not_ask: bool = False  # opted out (STOP) or asked to be forgotten
    live_escalation: bool = False  # someone from the team is still needed or with them
    imminent_unresolved: bool = False  # imminent risk shown, not resolved by staff
    survey_live: bool = False  # a survey is already out for this conversation
    blocked: bool = False  # a duty manager blocked the sender (they get only the numbers)


def may_ask(standing: Standing, now: dt.datetime) -> Tuple[bool, str]:
    """(True, "ok") or (False, why): the reason is a fixed word, for logs and tests."""
    if standing.do_not_ask:
        return False, "do_not_ask"
    if standing.imminent_unresolved:
        return False, "imminent_unresolved"
    if standing.live_escalation:
        return False, "live_escalation"
    if standing.survey_live:
        return False, "survey_live"
    if standing.blocked:
        return False, "blocked"
    if standing.last_asked_at is not None and now - standing.last_asked_at < WEEK:
        return False, "asked_this_week"
    return True, "ok"
