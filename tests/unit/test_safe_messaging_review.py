"""Every reply the line can send has a safe-messaging review in docs/safety/safe-messaging-review.md.

A response added to domain.yml, or a fixed reply sent outside Rasa, without an entry fails here;
so does an entry whose quoted text is no longer what the line sends (changed wording is
reviewed again). The review's format is in the file's own introduction: a `### name` heading,
the text quoted (`> ...`), one line per check, and a `Verdict:` line.

Also checks what the review relies on and tests can see: the fixed replies outside Rasa fit
one SMS, those that stand in for a failed turn give the emergency numbers, the fallbacks name
999, and no reply uses words the guidance calls stigmatising.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from bot.duty.staff import MAX_DISPLAY_NAME_CHARS
from bot.plan import sections as plan_sections
from bot.sms.segments import GSM7, encoding_of, segment_count

ROOT = Path(__file__).resolve().parents[2]
REVIEW = ROOT / "docs" / "safety" / "safe-messaging-review.md"
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
QUESTIONS = yaml.safe_load((ROOT / "data" / "feedback" / "questions.yml").read_text())

CHECKS = ("method", "judgement", "hope", "promises", "automated", "numbers")
RESULTS = ("ok", "n/a", "note", "fail")
VERDICTS = ("pass", "pass with note", "changed", "fail")

# Replies the line sends that are not domain responses: (file, module-level name). A string
# constant, or a function returning one (an f-string: its fields read as {field} in the review).
FIXED = [
    ("bot/sms/keywords.py", "FAILSAFE_REPLY"),
    ("bot/sms/keywords.py", "HELP_REPLY"),
    ("bot/escalation/dispatch.py", "NO_HUMAN_TEXT"),
    ("bot/escalation/dispatch.py", "accepted_text"),
    ("bot/escalation/dispatch.py", "declined_text"),
    ("bot/rasa_runtime/memory_guard.py", "EMERGENCY_NUMBERS"),
    ("actions/escalation.py", "COULD_NOT_REACH_TEAM"),
    ("actions/services.py", "FALLBACK"),
    ("bot/channels/relay.py", "joined_text"),
    ("bot/channels/relay.py", "handed_back_text"),
    ("bot/feedback/survey.py", "AGAIN"),
    ("bot/feedback/questions.py", "prompt_text"),
    ("bot/channels/contact_turn.py", "BLOCKED_REPLY"),
    ("bot/channels/contact_turn.py", "FAIR_USE_REPLY"),
    # The crisis plan (docs/plan.md); its steps are read from bot.plan.sections below.
    ("bot/plan/flow.py", "OFFER"),
    ("bot/plan/flow.py", "INTRO"),
    ("bot/plan/flow.py", "EDIT_INTRO"),
    ("bot/plan/flow.py", "DECLINED"),
    ("bot/plan/flow.py", "SAVED_STEP"),
    ("bot/plan/flow.py", "ASK_CONSENT"),
    ("bot/plan/flow.py", "CONSENT_YES"),
    ("bot/plan/flow.py", "CONSENT_NO"),
    ("bot/plan/flow.py", "FINISHED"),
    ("bot/plan/flow.py", "STOPPED"),
    ("bot/plan/flow.py", "NOTHING_SAVED"),
    ("bot/plan/flow.py", "EMPTY"),
    ("bot/plan/flow.py", "TOO_LONG"),
    ("bot/plan/flow.py", "PAUSED"),
    ("bot/plan/flow.py", "NOT_NOW"),
    ("bot/plan/flow.py", "DELETED"),
    ("bot/plan/flow.py", "NO_PLAN"),
    ("bot/plan/flow.py", "SHARE_ON"),
    ("bot/plan/flow.py", "SHARE_OFF"),
    ("bot/plan/flow.py", "SHARE_NO_PLAN"),
    ("bot/plan/flow.py", "SMS_HEAD"),
    ("bot/plan/flow.py", "WEB_HEAD"),
    ("bot/plan/flow.py", "PLAN_FOOT"),
    ("bot/plan/store.py", "UNREADABLE"),
    ("bot/plan/sections.py", "NUMBERS"),
    # The honest wait (docs/handoff.md); first_* fill utter_human_requested's {wait_estimate}.
    ("bot/escalation/wait.py", "UPDATE_UNREACHED"),
    ("bot/escalation/wait.py", "UPDATE_NOBODY"),
    ("bot/escalation/wait.py", "update_unknown"),
    ("bot/escalation/wait.py", "update_longer"),
    ("bot/escalation/wait.py", "update_estimate"),
    ("bot/escalation/wait.py", "NUMBERS"),
    ("bot/escalation/wait.py", "OFFER_CALM"),
    ("bot/escalation/wait.py", "OFFER_CALM_OR_PLAN"),
    ("bot/escalation/wait.py", "wait_text"),
    ("bot/escalation/wait.py", "FIRST_UNREACHED"),
    ("bot/escalation/wait.py", "FIRST_NOBODY"),
    ("bot/escalation/wait.py", "first_unknown"),
    ("bot/escalation/wait.py", "first_longer"),
    ("bot/escalation/wait.py", "first_estimate"),
]
# Module-level string constants named like a reply (``*_REPLY``, ``*_TEXT``) that are not sent
# to a person: a new constant so named must be reviewed (added to FIXED) or listed here.
NOT_A_REPLY = {("bot/channels/failsafe.py", "REASON_NO_REPLY")}
# Sent when a turn failed or nobody could be reached: the person must get every number.
MUST_GIVE_NUMBERS = ("FAILSAFE_REPLY", "HELP_REPLY", "NO_HUMAN_TEXT", "EMERGENCY_NUMBERS",
                     "COULD_NOT_REACH_TEAM", "FALLBACK", "UNREADABLE", "NOT_NOW", "NUMBERS")
NUMBERS = ("999", "116 123", "111")
# Answers to a message the assistant did not follow, the opening, and the ways out of the line.
FALLBACK_RESPONSES = ("utter_default", "utter_out_of_scope", "utter_confidentiality",
                      "utter_goodbye", "utter_opt_out", "utter_help_keyword")
# Samaritans' media guidelines and WHO/IASP (2023): language that presents suicide as a crime,
# a success or a failure.
STIGMATISING = ("commit suicide", "committed suicide", "commits suicide", "successful suicide",
                "successful attempt", "failed attempt", "unsuccessful attempt", "suicide epidemic")


def sections(text: str) -> Dict[str, str]:
    """``### name`` heading -> the section's text, up to the next heading of level 2 or 3."""
    out: Dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if line.startswith("### "):
            name = line[4:].strip().replace("`", "")
            out[name] = ""
        elif line.startswith("## ") or line.startswith("# "):
            name = None
        elif name is not None:
            out[name] += line + "\n"
    return out


def quoted(section: str) -> List[str]:
    """The blockquotes of a section, each joined into one line."""
    quotes, current = [], []
    for line in section.splitlines():
        if line.startswith(">"):
            current.append(line[1:].strip())
        elif current:
            quotes.append(" ".join(current))
            current = []
    if current:
        quotes.append(" ".join(current))
    return quotes


def _text_of(expr: ast.expr) -> str:
    if isinstance(expr, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
            for v in expr.values
        )
    value = ast.literal_eval(expr)
    assert isinstance(value, str)
    return value


def fixed_text(file: str, name: str) -> str:
    """The text of a module-level string constant, or of what a function returns."""
    tree = ast.parse((ROOT / file).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return _text_of(node.value)
        if isinstance(node, ast.FunctionDef) and node.name == name:
            returns = [n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None]
            assert len(returns) == 1, f"{file} {name}: expected one return"
            return _text_of(returns[0].value)
    raise AssertionError(f"{file} has no {name}")


def question_texts() -> Dict[str, str]:
    texts = {key: QUESTIONS[key] for key in ("offer", "thanks", "ended")}
    for questions in QUESTIONS["sets"].values():
        for q in questions["questions"]:
            texts[q["id"]] = q["text"]
    texts[QUESTIONS["free_text"]["id"]] = QUESTIONS["free_text"]["text"]
    return texts


def plan_steps() -> Dict[str, str]:
    """The crisis plan's step questions as asked ("Step n of 6. ..."), by section id."""
    return {s.id: plan_sections.question(i) for i, s in enumerate(plan_sections.SECTIONS)}


REVIEWED = sections(REVIEW.read_text())
DOMAIN_RESPONSES = sorted(DOMAIN["responses"])


def test_the_review_parses_and_knows_every_reply():
    assert len(REVIEWED) >= len(DOMAIN_RESPONSES) + len(FIXED)


@pytest.mark.parametrize("name", DOMAIN_RESPONSES)
def test_every_domain_response_has_a_review_entry(name):
    assert name in REVIEWED, (
        f"{name} in domain.yml has no safe-messaging review: add a '### {name}' entry to "
        f"{REVIEW.relative_to(ROOT)}")
    texts = [v["text"] for v in DOMAIN["responses"][name]]
    assert sorted(quoted(REVIEWED[name])) == sorted(texts), (
        f"{name}: the review quotes other words than domain.yml sends; review the new wording")


@pytest.mark.parametrize("file,name", FIXED, ids=[n for _, n in FIXED])
def test_every_fixed_reply_outside_rasa_has_a_review_entry(file, name):
    heading = f"{file} {name}"
    assert heading in REVIEWED, f"no '### {heading}' entry in {REVIEW.relative_to(ROOT)}"
    assert quoted(REVIEWED[heading]) == [fixed_text(file, name)], (
        f"{heading}: the review quotes other words than the code sends; review the new wording")


@pytest.mark.parametrize("key", sorted(question_texts()))
def test_every_feedback_question_has_a_review_entry(key):
    heading = f"data/feedback/questions.yml {key}"
    assert heading in REVIEWED, f"no '### {heading}' entry in {REVIEW.relative_to(ROOT)}"
    assert quoted(REVIEWED[heading]) == [question_texts()[key]]


@pytest.mark.parametrize("key", sorted(plan_steps()))
def test_every_plan_step_has_a_review_entry(key):
    heading = f"bot/plan/sections.py {key}"
    assert heading in REVIEWED, f"no '### {heading}' entry in {REVIEW.relative_to(ROOT)}"
    assert quoted(REVIEWED[heading]) == [plan_steps()[key]]


@pytest.mark.parametrize("name", sorted(REVIEWED))
def test_every_review_entry_has_a_verdict_and_checks(name):
    body = REVIEWED[name]
    for check in CHECKS:
        found = re.search(rf"^- {check}: (\S+)", body, flags=re.M)
        assert found, f"{name}: no '- {check}: ...' line"
        assert found.group(1).rstrip(",;.") in RESULTS, f"{name}: {check} must start with one of {RESULTS}"
    verdict = re.search(r"^Verdict: (.+)$", body, flags=re.M)
    assert verdict and verdict.group(1).strip().rstrip(".") in VERDICTS, f"{name}: no Verdict: line"
    assert verdict.group(1).strip().rstrip(".") != "fail", f"{name} fails the review: change the wording"


def reply_constants() -> List[tuple]:
    """(file, name) of every module-level string constant in bot/ and actions/ named like a
    reply."""
    found = []
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "actions").rglob("*.py")]):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.Assign) or not isinstance(node.value, (ast.Constant, ast.JoinedStr)):
                continue
            if isinstance(node.value, ast.Constant) and not isinstance(node.value.value, str):
                continue
            for target in node.targets:
                name = getattr(target, "id", "")
                if name.endswith(("_REPLY", "_TEXT")):
                    found.append((path.relative_to(ROOT).as_posix(), name))
    return found


def test_every_reply_constant_in_the_code_is_reviewed():
    """A new fixed reply (say ``FORGET_REPLY``) is found here even if nobody adds it to FIXED."""
    missing = set(reply_constants()) - set(FIXED) - NOT_A_REPLY
    assert not missing, f"add these to FIXED and review them, or to NOT_A_REPLY: {sorted(missing)}"
    assert ("bot/sms/keywords.py", "FAILSAFE_REPLY") in reply_constants()


def test_a_response_without_a_review_is_caught():
    """The check above can fail: a made-up response is not in the review."""
    assert "utter_not_reviewed_yet" not in REVIEWED
    assert quoted("> one\n> line\n\ntext\n> two\n") == ["one line", "two"]
    assert sections("### `a`\nx\n## b\ny\n### c\nz\n") == {"a": "x\n", "c": "z\n"}


def _filled(file: str, name: str) -> str:
    """The fixed reply with its fields at their longest: a display name (MAX_DISPLAY_NAME_CHARS)
    or a house name (60 characters)."""
    text = fixed_text(file, name)
    return text.replace("{name}", "N" * MAX_DISPLAY_NAME_CHARS).replace("{house}", "H" * 60)


@pytest.mark.parametrize("file,name", FIXED, ids=[n for _, n in FIXED])
def test_fixed_replies_fit_one_sms(file, name):
    text = _filled(file, name)
    assert encoding_of(text) == GSM7, f"{name} has characters that force UCS-2"
    assert len(text) <= 306 and segment_count(text) <= 2, f"{name} is longer than 306 GSM-7 characters"


@pytest.mark.parametrize("file,name", [f for f in FIXED if f[1] in MUST_GIVE_NUMBERS],
                         ids=[n for _, n in FIXED if n in MUST_GIVE_NUMBERS])
def test_fixed_replies_that_must_give_the_numbers_do(file, name):
    text = fixed_text(file, name)
    for number in NUMBERS:
        assert number in text, f"{name} does not give {number}"


@pytest.mark.parametrize("name", FALLBACK_RESPONSES)
def test_every_fallback_reply_names_999(name):
    for variant in DOMAIN["responses"][name]:
        assert "999" in variant["text"], f"{name} leaves a person who was not understood without 999"


def test_no_reply_uses_stigmatising_words():
    texts = [v["text"] for vs in DOMAIN["responses"].values() for v in vs]
    texts += [fixed_text(f, n) for f, n in FIXED] + list(question_texts().values())
    texts += list(plan_steps().values())
    for text in texts:
        for words in STIGMATISING:
            assert words not in text.lower(), f"{words!r} in {text!r}"
