"""The plan's steps (Stanley-Brown safety planning, in plain words), what a person writes made
safe to keep, and the plan as text to send back.

Every fixed text here is one SMS at most (306 GSM-7 characters, straight quotes, no emoji;
``tests/plan/test_sections.py`` checks each). No step asks for, or says back, any detail of a
method: "making things safer" asks who or what could help, and the person's own words are
theirs, kept as written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Section:
    id: str
    title: str  # as the plan is sent back and shown to staff
    question: str  # asked while building (after "Step n of 6.")


SECTIONS: Tuple[Section, ...] = (
    Section("warning_signs", "Warning signs",
            "What tells you a hard time may be starting? It could be thoughts, feelings, "
            "or things that happen."),
    Section("help_myself", "Things I can do to help myself",
            "What can you do on your own to feel a bit better, even for a short while?"),
    Section("take_my_mind_off", "People and places that take my mind off things",
            "Which people or places help take your mind off things?"),
    Section("people_to_ask", "People I can ask for help",
            "Who could you ask for help? You can add their number if you like."),
    Section("services", "Professionals and services",
            "Which professionals or services would you contact, such as your GP or a "
            "care team? The emergency numbers and this line are always added for you."),
    Section("safer", "Making things safer",
            "What could help keep you safer when things are hard? For example, someone "
            "who could be with you, or a place where you feel safe."),
)
IDS = tuple(s.id for s in SECTIONS)
BY_ID = {s.id: s for s in SECTIONS}

# Always part of the plan when it is sent back (or shown to staff): the line and the
# emergency numbers, whatever the person wrote or skipped.
NUMBERS = ("This line: text or chat with us any time out of hours. Samaritans: 116 123 "
           "(free, 24/7). NHS 111, option 2 for mental health. In danger now: 999 or A&E.")

# One step's answer, after cleaning: longer is refused with a clear answer, never cut.
MAX_ANSWER_CHARS = 1000

# C0 and C1 control characters (but newline and tab), and the bidirectional overrides that
# could make a plan read differently in the console than it was written.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), None)
_SPACES = re.compile(r"[ \t]+")
_LINES = re.compile(r"\n{2,}")


def clean(text: Optional[str]) -> str:
    """The person's words, safe to keep and show: NFC, no control characters (a tab is a
    space, carriage returns are newlines), no bidirectional overrides, runs of spaces and of
    blank lines made one, trimmed. Emoji and every other printable character are kept."""
    text = unicodedata.normalize("NFC", text or "").replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_BIDI)
    text = "".join(ch for ch in text
                   if ch == "\n" or ch == "\t" or unicodedata.category(ch) != "Cc")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _LINES.sub("\n", text).strip()


def question(position: int) -> str:
    return f"Step {position + 1} of {len(SECTIONS)}. {SECTIONS[position].question}"


def render(sections: Dict[str, str], with_numbers: bool = True) -> str:
    """The plan as plain text, one line a step (the steps the person skipped are left out),
    then the line's and the emergency numbers."""
    lines = [f"{s.title}: {sections[s.id]}" for s in SECTIONS if sections.get(s.id)]
    if with_numbers:
        lines.append(f"Numbers: {NUMBERS}")
    return "\n".join(lines)


def filled(sections: Dict[str, str]) -> int:
    return sum(1 for s in SECTIONS if sections.get(s.id))
