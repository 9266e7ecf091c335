"""The feedback questions (``data/feedback/questions.yml``), validated with pydantic.

A user group edits the file without code, so a mistake must say where it is: every problem is
reported as ``FILE: field.path: message`` (``questions.yml: sets.default.questions[1].choices:
...``), all of them at once. ``load_or_none`` is what the line calls at start-up: a file that
does not validate is logged (file and fields, never anything a person wrote) and the line runs
without a survey rather than not at all.

The seven criteria are the ones service users wrote (docs/feedback.md); every question names
the one it speaks to, so the report (issue 26, items 2-4) can count answers per criterion.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from pydantic import BaseModel, Extra, ValidationError, conlist, constr, root_validator, validator

from bot.settings import ROOT

logger = logging.getLogger(__name__)

DEFAULT_FILE = ROOT / "data" / "feedback" / "questions.yml"

# The seven criteria, in the users' words (the report's rows).
CRITERIA: Dict[str, str] = {
    "valued": "valued as a person and an expert in their own life",
    "listened": "listened to",
    "learned": "the service learned from them",
    "engaged": "engaged with what matters in their life",
    "change": "worked with them towards change",
    "connected": "connected to advocacy and advice",
    "involved": "involved in running it",
}
# The words that are never a choice: the survey's own controls.
RESERVED = frozenset({"skip", "stop"})
# One SMS (GSM-7): a question goes out with its numbered choices, in one text.
SMS_CHARS = 160
_ID = r"^[a-z][a-z0-9_]{0,47}$"


def normalise(text: str) -> str:
    """How an answer is compared with a choice: lower case, apostrophes and full stops gone,
    spaces squeezed ("Didn't need it." == "didnt need it")."""
    text = re.sub(r"[’'`.!,]", "", text.strip().lower())
    return re.sub(r"\s+", " ", text)


class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid
        anystr_strip_whitespace = True


def _text(value: Any) -> Any:
    # YAML reads a bare yes / no / on / off as a boolean: say so, rather than "str type expected".
    if isinstance(value, bool):
        raise ValueError("read as true/false by YAML: put the word in quotes (\"yes\", \"no\")")
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


class QuestionEntry(_Strict):
    id: constr(regex=_ID)  # type: ignore[valid-type]
    criterion: str
    text: constr(min_length=1, max_length=120)  # type: ignore[valid-type]
    choices: conlist(str, min_items=2, max_items=5)  # type: ignore[valid-type]

    _texts = validator("text", pre=True, allow_reuse=True)(_text)

    @validator("choices", pre=True, each_item=True)
    def _choice_text(cls, value: Any) -> Any:
        return _text(value)

    @validator("criterion")
    def _criterion(cls, value: str) -> str:
        if value not in CRITERIA:
            raise ValueError(f"{value!r} is not one of {', '.join(CRITERIA)}")
        return value

    @validator("choices")
    def _choices(cls, choices: List[str]) -> List[str]:
        words = [normalise(c) for c in choices]
        if any(not w for w in words):
            raise ValueError("a choice is empty")
        if len(set(words)) != len(words):
            raise ValueError("two choices are the same word")
        if RESERVED.intersection(words):
            raise ValueError("'skip' and 'stop' are the survey's own words, not choices")
        if any(w.isdigit() for w in words):
            raise ValueError("a choice is answered by its number: give it a word, not a number")
        return choices


class QuestionSetEntry(_Strict):
    questions: conlist(QuestionEntry, min_items=1, max_items=3)  # type: ignore[valid-type]

    @validator("questions")
    def _unique(cls, questions: List[QuestionEntry]) -> List[QuestionEntry]:
        ids = [q.id for q in questions]
        if len(set(ids)) != len(ids):
            raise ValueError("two questions have the same id")
        return questions


class FreeTextEntry(_Strict):
    id: constr(regex=_ID)  # type: ignore[valid-type]
    text: constr(min_length=1, max_length=SMS_CHARS)  # type: ignore[valid-type]

    _texts = validator("text", pre=True, allow_reuse=True)(_text)


class QuestionsFile(_Strict):
    version: int
    offer: constr(min_length=1, max_length=SMS_CHARS)  # type: ignore[valid-type]
    thanks: constr(min_length=1, max_length=SMS_CHARS)  # type: ignore[valid-type]
    ended: constr(min_length=1, max_length=SMS_CHARS)  # type: ignore[valid-type]
    sets: Dict[str, QuestionSetEntry]
    free_text: Optional[FreeTextEntry] = None

    _texts = validator("offer", "thanks", "ended", pre=True, allow_reuse=True)(_text)

    @validator("version")
    def _version(cls, value: int) -> int:
        if value != 1:
            raise ValueError("this line reads version 1")
        return value

    @validator("sets")
    def _default(cls, sets: Dict[str, QuestionSetEntry]) -> Dict[str, QuestionSetEntry]:
        if "default" not in sets:
            raise ValueError("needs a 'default' set (asked unless another fits)")
        for name in sets:
            if not re.match(_ID, name):
                raise ValueError(f"set name {name!r}: lower-case letters, digits and _ only")
        return sets

    @root_validator(skip_on_failure=True)
    def _one_sms_each(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        for name, qset in values["sets"].items():
            for i, q in enumerate(qset.questions):
                if len(prompt_text(q.text, tuple(q.choices))) > SMS_CHARS:
                    raise ValueError(
                        f"sets.{name}.questions[{i}]: the question with its choices is over "
                        f"{SMS_CHARS} characters (one SMS)")
        free = values.get("free_text")
        ids = [q.id for s in values["sets"].values() for q in s.questions]
        if free is not None and free.id in ids:
            raise ValueError("free_text.id is also a question's id")
        return values


@dataclass(frozen=True)
class Question:
    id: str
    criterion: Optional[str]  # None for the free-text question
    text: str
    choices: Tuple[str, ...] = ()  # empty: free text

    @property
    def free_text(self) -> bool:
        return not self.choices

    def prompt(self) -> str:
        """The question as one SMS: the text, then its choices by number and word."""
        return prompt_text(self.text, self.choices) if self.choices else self.text


@dataclass(frozen=True)
class Questions:
    """The validated file: what the survey (``bot/feedback/survey.py``) asks."""

    offer: str
    thanks: str
    ended: str
    sets: Dict[str, Tuple[Question, ...]]
    free_text: Optional[Question]

    def for_audience(self, audience: Optional[str]) -> Tuple[str, Tuple[Question, ...]]:
        """The set's name and its questions, the free-text one last: ``carers`` for a
        conversation about someone the person cares for (when the file has that set)."""
        name = audience if audience in self.sets else "default"
        asked = self.sets[name] + ((self.free_text,) if self.free_text else ())
        return name, asked


def prompt_text(text: str, choices: Tuple[str, ...]) -> str:
    options = ", ".join(f"{i} {c}" for i, c in enumerate(choices, 1))
    return f"{text} Reply {options}, or SKIP."


class FeedbackFileError(ValueError):
    """The questions file did not validate; ``problems`` lists each as ``field: message``."""

    def __init__(self, file: str, problems: List[str]):
        self.file = file
        self.problems = list(problems)
        super().__init__("\n".join(f"{file}: {p}" for p in self.problems))


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part == "__root__":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(document: Any, file: str = "questions.yml") -> Questions:
    """Validate a parsed YAML document; raise ``FeedbackFileError`` naming every field."""
    if not isinstance(document, dict):
        raise FeedbackFileError(file, ["the file must be a mapping (version, offer, sets, ...)"])
    try:
        model = QuestionsFile.parse_obj(document)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _where(err["loc"])
            problems.append(f"{where}: {err['msg']}" if where else err["msg"])
        raise FeedbackFileError(file, problems) from None
    sets = {
        name: tuple(Question(q.id, q.criterion, q.text, tuple(q.choices)) for q in qset.questions)
        for name, qset in model.sets.items()
    }
    free = (Question(model.free_text.id, None, model.free_text.text)
            if model.free_text else None)
    return Questions(model.offer, model.thanks, model.ended, sets, free)


def load(path: Path | str = DEFAULT_FILE) -> Questions:
    """Read and validate the file at ``path``."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FeedbackFileError(str(path), [f"cannot be read ({exc.strerror or exc})"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        raise FeedbackFileError(str(path), [f"{at}not valid YAML"]) from None
    return parse(document, str(path))


def load_or_none(path: Path | str = DEFAULT_FILE) -> Optional[Questions]:
    """The questions, or None (logged, naming the file and fields) when the file is missing
    or malformed: the line then runs without a survey."""
    try:
        return load(path)
    except FeedbackFileError as exc:
        logger.error("feedback survey off: the questions file was refused:\n%s", exc)
        return None


_configured: Optional[Tuple[str, Optional[Questions]]] = None


def configured() -> Optional[Questions]:
    """The questions of ``FEEDBACK_FILE``, read once per process (None: no survey; "off"
    turns it off). A refused file is logged once, at the first call: each process calls it
    as it starts (the action server, the Rasa server's channels)."""
    global _configured
    from bot.settings import settings

    path = settings().feedback_file
    if _configured is None or _configured[0] != path:
        _configured = (path, None if path.strip().lower() in ("", "off") else load_or_none(path))
    return _configured[1]


def reset() -> None:
    """Forget the questions read (tests)."""
    global _configured
    _configured = None
