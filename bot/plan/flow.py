"""The plan's conversation as a pure state machine: one message in, what to say and what to keep.

No database, no Rasa: ``bot/plan/store.py`` keeps the state in ``plan_sessions`` and the plan
in ``crisis_plans``; the channels (``bot/channels/plan_turn.py``) carry the replies. The rules
of docs/plan.md that concern one message are here, so the tests can read them:

- **Words.** PLAN sends the plan back (or, with none yet, offers to make one); PLAN EDIT goes
  through the steps again; PLAN DELETE deletes it; PLAN SHARE and PLAN PRIVATE give or take
  back consent to show it to the person who joins. A word is the whole message, any case,
  either word order. A word ends any building under way, then does what it says.
- **Building.** One step at a time; each answer is kept as it comes (nothing is lost if the
  person stops); SKIP passes a step (keeps it, when editing), DONE finishes (STOP, on web
  chat, stops; on SMS it is an opt-out and goes to the dialogue). Then,
  once, the question about sharing. An answer that is too long or has no words in it gets a
  clear answer and the same step again.
- **Risk always wins.** A message the risk detector reads as urgent or imminent is never the
  plan's: building stops, nothing of it is kept, the dialogue takes it down the risk path, and
  the person is then told their plan is paused.
- **Never during imminent risk.** While the emergency is on (``risk_emergency``, or an
  imminent escalation the person has not confirmed being safe in) the plan is not offered,
  begun or edited; a plan they already have is still sent back when they ask for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from bot.plan import sections as S

# Stages of a live session (``plan_sessions.stage``).
OFFERED = "offered"  # "would you like to make one?" is out
BUILDING = "building"  # a step's question is out
CONSENT = "consent"  # "may the person who joins see it?" is out
STAGES = (OFFERED, BUILDING, CONSENT)

# The words (see above), normalised.
SHOW, EDIT, MAKE, DELETE, SHARE, PRIVATE = "show", "edit", "make", "delete", "share", "private"
_WORDS = {
    SHOW: ("plan", "my plan", "send plan", "send my plan", "show plan", "show my plan"),
    EDIT: ("plan edit", "edit plan", "edit my plan", "change plan", "change my plan"),
    MAKE: ("make plan", "plan make", "make a plan", "make my plan", "new plan", "plan new",
           "start plan", "plan start"),
    DELETE: ("plan delete", "delete plan", "delete my plan"),
    SHARE: ("plan share", "share plan", "share my plan"),
    PRIVATE: ("plan private", "private plan", "keep plan private", "keep my plan private",
              "plan unshare", "unshare plan"),
}
COMMANDS = {phrase: word for word, phrases in _WORDS.items() for phrase in phrases}
YES = frozenset({"yes", "y", "yeah", "yep", "ok", "okay", "sure", "go on", "go ahead", "please",
                 "yes please"})
NO = frozenset({"no", "n", "nope", "no thanks", "no thank you", "not now", "not yet"})
SKIP, DONE, STOP = "skip", "done", "stop"
# Not END, CANCEL or QUIT: on SMS those are opt-out words (Twilio's), which the channel
# passes to the dialogue whatever the plan is doing (bot/channels/plan_turn.py); no text here
# ever asks for STOP either. "stop" stops building on web chat.
_FINISH = frozenset({DONE, "finish", "finished", "that's it", "thats it"})
_STOP = frozenset({STOP})

# Fixed texts: each one SMS at most (tests/plan/test_flow.py).
OFFER = ("I'm the line's automated assistant. You don't have a plan saved yet. Would you "
         "like to make one now? It is a list, in your own words, of what helps when things "
         "get hard. It takes a few minutes and you can skip any step. Reply YES or NO.")
INTRO = ("Let's write your plan one step at a time, in your own words. Reply SKIP to pass a "
         "step, or DONE to finish. What you write is saved as you go and kept private. I'm "
         "an automated assistant.")
EDIT_INTRO = ("Let's go through your plan again. Send new words for a step, SKIP to keep it "
              "as it is, or DONE to finish.")
DECLINED = "OK. If you'd like to make a plan another time, text PLAN."
SAVED_STEP = "Saved."
ASK_CONSENT = ("Your plan is saved. If you talk to someone from our team, may they see it? "
               "It could save you telling them everything again. Reply YES or NO. You "
               "can change this any time with PLAN SHARE or PLAN PRIVATE.")
CONSENT_YES = ("Thank you. When you talk to someone from our team they can see your plan. "
               "Text PLAN PRIVATE any time to stop that, or PLAN to get your plan back.")
CONSENT_NO = ("OK, your plan stays private to you. Text PLAN SHARE if you change your mind, "
              "or PLAN to get your plan back.")
FINISHED = "Your plan is saved. Text PLAN any time to get it back, PLAN EDIT to change it."
STOPPED = ("Stopped. What you wrote so far is saved. Text PLAN to get it back, or PLAN EDIT "
           "to carry on.")
NOTHING_SAVED = "Stopped. Nothing was saved. Text PLAN any time if you'd like to make a plan."
EMPTY = "I didn't find any words in that."
TOO_LONG = (f"That's longer than I can keep for one step (up to {S.MAX_ANSWER_CHARS:,} "
            "characters), so I haven't saved it. Could you send a shorter version?")
PAUSED = ("I've paused your plan; what you saved before is kept. Text PLAN EDIT when you "
          "want to carry on.")
NOT_NOW = ("Let's make your plan another time, when things feel calmer. If you are in danger "
           "now, call 999. Samaritans: 116 123 (free, 24/7). NHS 111, option 2.")
DELETED = "I've deleted your plan. Text PLAN any time if you'd like to make a new one."
NO_PLAN = ("I'm the line's automated assistant. You don't have a plan saved, so there was "
           "nothing to delete.")
SHARE_ON = ("Thank you. When you talk to someone from our team they can see your plan. Text "
            "PLAN PRIVATE any time to stop that.")
SHARE_OFF = ("Done: your plan is private to you. Our team will not see it. Text PLAN SHARE if "
             "you change your mind.")
SHARE_NO_PLAN = ("I'm the line's automated assistant. You don't have a plan saved yet. Text "
                 "PLAN to make one.")
SMS_HEAD = "Your plan (it may come as more than one text):"
WEB_HEAD = ("Your plan (to keep it, print or copy it: this chat cannot find it again once you "
            "end the chat or close the tab):")
PLAN_FOOT = "Text PLAN EDIT to change it, PLAN DELETE to delete it."
# While editing: the step's words so far, cut to fit one SMS.
_HAVE = ' You have: "{}". SKIP keeps it.'
SMS_LIMIT = 306

_PUNCT = re.compile(r"[\s.!?,]+$")


def normalise(text: Optional[str]) -> str:
    said = " ".join((text or "").replace("\u2019", "'").lower().split())
    return _PUNCT.sub("", said)


def command(text: Optional[str]) -> Optional[str]:
    """The plan word ``text`` is (SHOW, EDIT ...), or None."""
    return COMMANDS.get(normalise(text))


def could_be_plan_word(text: Optional[str]) -> bool:
    """Cheap: could this message be a plan word (the channels' test before any query)."""
    return command(text) is not None


@dataclass(frozen=True)
class State:
    stage: str
    position: int = 0
    editing: bool = False


@dataclass(frozen=True)
class Reply:
    text: str
    choices: Tuple[str, ...] = ()
    plan: bool = False  # the plan itself (web chat: shown whole, with print and copy)


@dataclass(frozen=True)
class Outcome:
    state: Optional[State]  # None: no session (ended, or none started)
    replies: Tuple[Reply, ...] = ()
    save: Optional[Tuple[str, str]] = None  # (section id, the person's words)
    consent: Optional[bool] = None  # recorded now (True: share, False: private)
    delete: bool = False
    passthrough: bool = False  # the message goes to the dialogue as well
    after: Tuple[Reply, ...] = ()  # said after the dialogue's own reply (passthrough only)


@dataclass(frozen=True)
class Known:
    """What the store knows when a message comes in."""

    sections: Optional[Dict[str, str]] = None  # None: no plan
    share: Optional[bool] = None  # the person's consent (None: not asked)
    at_risk: bool = False  # the emergency is on (bot/plan/store.in_emergency)


def plan_text(sections: Dict[str, str], sms: bool) -> str:
    head = SMS_HEAD if sms else WEB_HEAD
    return "\n".join((head, S.render(sections), PLAN_FOOT))


def step_prompt(position: int, sections: Dict[str, str], editing: bool,
                lead: str = "") -> Reply:
    text = (lead + " " if lead else "") + S.question(position)
    current = sections.get(S.IDS[position]) if editing else None
    if current:
        room = SMS_LIMIT - len(text) - len(_HAVE.format(""))
        words = " ".join(current.split())
        if len(words) > room:
            words = words[:max(room - 3, 0)].rstrip() + "..."
        text += _HAVE.format(words)
    return Reply(text, (SKIP, DONE))


def _start(known: Known, editing: bool) -> Outcome:
    sections = known.sections or {}
    lead = Reply(EDIT_INTRO if editing else INTRO)
    return Outcome(State(BUILDING, 0, editing), (lead, step_prompt(0, sections, editing)))


def _finish(known: Known, sections: Dict[str, str], **kept) -> Outcome:
    if not S.filled(sections):
        return Outcome(None, (Reply(NOTHING_SAVED),), **kept)
    if known.share is None:
        return Outcome(State(CONSENT), (Reply(ASK_CONSENT, ("yes", "no")),), **kept)
    return Outcome(None, (Reply(FINISHED),), **kept)


def _command(word: str, known: Known, sms: bool) -> Outcome:
    has = known.sections is not None and S.filled(known.sections) > 0
    if word == SHOW:
        if has:
            return Outcome(None, (Reply(plan_text(known.sections or {}, sms), plan=True),))
        if known.at_risk:
            return Outcome(None, (Reply(NOT_NOW),))
        return Outcome(State(OFFERED), (Reply(OFFER, ("yes", "no")),))
    if word in (EDIT, MAKE):
        if known.at_risk:
            return Outcome(None, (Reply(NOT_NOW),))
        return _start(known, editing=has)
    if word == DELETE:
        return Outcome(None, (Reply(DELETED if known.sections is not None else NO_PLAN),),
                       delete=known.sections is not None)
    if not has:
        return Outcome(None, (Reply(SHARE_NO_PLAN),))
    if word == SHARE:
        return Outcome(None, (Reply(SHARE_ON),), consent=True)
    return Outcome(None, (Reply(SHARE_OFF),), consent=False)


def reply(state: Optional[State], text: str, known: Known, *, risk: bool = False,
          sms: bool = False) -> Optional[Outcome]:
    """The plan's step for the person's message ``text``; None when the message is not the
    plan's (no session, and not a plan word). ``risk``: the detector read it as urgent or
    imminent."""
    word = command(text)
    if risk:
        if state is None and word is None:
            return None
        # Building stops and nothing of the message is kept; the dialogue's risk path has it.
        paused = (Reply(PAUSED),) if state is not None and state.stage == BUILDING else ()
        return Outcome(None, passthrough=True, after=paused)
    if word is not None:
        return _command(word, known, sms)
    if state is None:
        return None
    said = normalise(text)
    sections = dict(known.sections or {})
    if state.stage == OFFERED:
        if said in YES:
            if known.at_risk:
                return Outcome(None, (Reply(NOT_NOW),))
            return _start(known, editing=False)
        if said in NO:
            return Outcome(None, (Reply(DECLINED),))
        return Outcome(None, passthrough=True)  # they wanted to talk about something else
    if state.stage == CONSENT:
        if said in YES:
            return Outcome(None, (Reply(CONSENT_YES),), consent=True)
        if said in NO:
            return Outcome(None, (Reply(CONSENT_NO),), consent=False)
        return Outcome(None, passthrough=True)  # not asked again now; PLAN SHARE any time
    # BUILDING
    if said in _STOP:
        return Outcome(None, (Reply(STOPPED if S.filled(sections) else NOTHING_SAVED),))
    if said in _FINISH:
        return _finish(known, sections)
    save = None
    lead = ""
    if said != SKIP:
        words = S.clean(text)
        if not words:
            return Outcome(state, (step_prompt(state.position, sections, state.editing, EMPTY),))
        if len(words) > S.MAX_ANSWER_CHARS:
            return Outcome(state, (Reply(TOO_LONG, (SKIP, DONE)),))
        save = (S.IDS[state.position], words)
        sections[save[0]] = words
        lead = SAVED_STEP
    nxt = state.position + 1
    if nxt >= len(S.SECTIONS):
        return _finish(known, sections, save=save)
    return Outcome(State(BUILDING, nxt, state.editing),
                   (step_prompt(nxt, sections, state.editing, lead),), save=save)
