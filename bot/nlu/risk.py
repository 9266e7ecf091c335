"""Risk detector: how urgent is this message?

    from bot.nlu.risk import RiskDetector, Risk, LEVELS
    detector = RiskDetector(nlp)            # nlp: the line's spaCy pipeline (bot.nlu.spacy_pipeline)
    detector.assess("im gonna od 2nite")    # Risk(level="urgent"/"imminent", signals=(...))

Levels (``LEVELS``, ordered): ``none``; ``concern`` (distress without signs below); ``urgent``
(thoughts or acts of suicide or self-harm, risk to others, someone else at risk); ``imminent``
(an act under way or about to happen: overdose taken, at a height, means in hand, bleeding).

How it works, in order:
1. ``risk_normalise``: lower case, SMS spelling, stretched letters, typos of key words.
2. spaCy tokenizer + lemma keys (lookup lemmas with a few fixes) and a ``Matcher`` compiled from
   the patterns in ``risk_lexicon``.
3. Each match is scored in its context: safe idioms drop overlapping matches; a negation just
   before it lowers it one level (never for phrases that carry their own negation, such as
   "don't want to live"; never below urgent for an act); a general or educational frame ("why do
   people...", "essay on...") makes it concern; who it is about gives ``third_party_risk``,
   ``risk_to_others`` or ``safeguarding``.
4. The highest level wins; signals are the union, most serious first.

Safety bias: where the words are ambiguous, prefer the higher level. A false alarm costs a human
a minute; a miss can cost a life. ``assess`` never raises; it never logs message text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.lookups import Table
from spacy.tokens import Doc

from bot.nlu.risk_lexicon import (
    ACCIDENT_CUES,
    EDUCATION_CUES,
    GAME_CUES,
    HISTORY_CUES,
    KEYWORDS,
    MACROS,
    RULES,
    Rule,
)
from bot.nlu.risk_normalise import Normaliser

if TYPE_CHECKING:  # pragma: no cover
    from bot.nlu.risk_model import RiskModel

log = logging.getLogger(__name__)

LEVELS = ("none", "concern", "urgent", "imminent")
_RANK = {name: i for i, name in enumerate(LEVELS)}


@dataclass(frozen=True)
class Risk:
    level: str
    signals: Tuple[str, ...] = ()
    #: for the lexicon's own urgent reading, what it rests on (``_basis``): ``first`` (the
    #: writer says it of themselves), ``cue`` (risk words about someone else, people in
    #: general, or no one said); empty otherwise. Not part of a reading's identity.
    basis: str = field(default="", compare=False)

    @property
    def rank(self) -> int:
        return _RANK[self.level]


NONE = Risk("none", ())

# Most serious first; unknown signals sort last.
_SIGNAL_ORDER = (
    "act_in_progress", "overdose", "at_height", "means", "plan", "suicidal_ideation", "self_harm",
    "unsafe", "risk_to_others", "safeguarding", "third_party_risk", "hopelessness", "distress",
    "negated", "education", "idiom", "history", "unconfirmed", "model_imminent", "model_urgent",
    "model_concern",
    "detector_error",
)

# ------------------------------------------------------------------------- word classes (keys) --
# Lemma-key fixes on top of the lookup table: contractions split by the tokenizer ("ca" + "n't"),
# and lookups that would hide meaning ("dying" -> "dye", "'s" -> "have", "better" -> "well").
_KEY_OVERRIDES = {
    "ca": "can", "wo": "will", "sha": "shall", "ai": "be", "'s": "be", "s": "be", "'re": "be",
    "'m": "be", "n't": "not", "nt": "not", "dying": "die", "dyin": "die", "better": "better",
    "worse": "worse", "gon": "go", "na": "to", "u": "you", "im": "i", "meself": "myself",
    "felt": "feel", "left": "left", "lying": "lie", "saw": "saw", "tabs": "tablet",
    "pills": "pill", "meds": "meds", "od": "overdose", "'d": "would", "'ll": "will", "'ve": "have",
    "'em": "them", "em": "them", "wanna": "want", "gonna": "go",
}

_NEG_CUES = frozenset({"not", "never", "no", "nor", "neither"})
# Words after a negation that make it not a negation: "can't stop thinking about", "not just",
# "not sure if", "don't know why", "no matter", "no one".
_PSEUDO_NEG_NEXT = frozenset({"stop", "help", "only", "just", "sure", "know", "lie", "wait",
                              "matter", "one", "body", "doubt", "saying", "say", "mean"})
_SENT_END = frozenset({".", "!", "?", ";", "...", "…", "..", "!!", "??", "?!", "!?"})
_CLAUSE_END = _SENT_END | frozenset({",", ":", "-", "--", "—", "–", "(", ")", "/"})
_CLAUSE_WORDS = frozenset({"but", "though", "although", "however", "except", "whereas", "and",
                           "so", "because", "cos", "yet", "tho", "anyway", "while", "whilst",
                           "unless", "until", "then"})
_FIRST = frozenset({"i", "me", "my", "myself", "mine"})
_THIRD = frozenset({"he", "she", "him", "her", "his", "himself", "herself"})
_PLURAL = frozenset({"they", "them", "their", "themselves", "themself"})
_GENERIC = frozenset({
    "people", "someone", "somebody", "anyone", "anybody", "person", "you", "yourself", "one",
    "oneself", "your", "teenager", "teen", "kid", "child", "man", "men", "woman", "women",
    "student", "soldier", "character", "celebrity", "patient", "adolescent", "individual",
    "human", "guy", "everyone", "everybody", "population", "victim", "victims", "persons",
    "veteran", "user", "users",
})
_POSSESSIVE = frozenset({"my", "our", "his", "her", "their", "your"})
# First words of a question (surface forms: "been cutting again" is not a question).
_WH = frozenset({"what", "what's", "why", "how", "when", "where", "who", "which", "whose", "is",
                 "are", "am", "do", "does", "did", "can", "could", "should", "would", "will",
                 "have", "has", "was", "were", "isn't", "aren't"})
_INTENT_MARKERS = frozenset({"go", "going", "will", "plan", "decide", "decided", "ready", "about",
                             "tonight", "gonna"})
_OTHERS_INTENT = frozenset({
    "want", "go", "going", "will", "might", "may", "could", "would", "feel", "urge", "think",
    "thought", "plan", "scared", "afraid", "worry", "worried", "fear", "tempt", "tempted", "about",
    "ready", "like", "fantasise", "fantasize", "intend", "decide", "try", "gonna", "wanna",
    "shall", "can", "need", "threaten", "dream",
})
_NUMBER_WORDS = {
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12,
}
#: an amount of tablets that is an overdose for anyone to report (2 paracetamol is a headache)
_OVERDOSE_MIN = 5
_PAST_SPANS = frozenset({"year", "years", "month", "months", "summer", "winter", "christmas",
                         "spring", "autumn"})

# Long messages: the first and last parts are read (risk often comes at the end of a long
# message; 20,000 characters is four times the longest SMS concatenation anyone sends).
_MAX_CHARS = 20000


class PatternError(ValueError):
    """A lexicon pattern that cannot be compiled (caught by the tests)."""


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    at_end: bool


@dataclass
class _Hit:
    rule: Rule
    start: int
    end: int
    level: str
    signals: Tuple[str, ...]
    negated: bool = False
    person: str = "unknown"


def _expand(pattern: str) -> List[str]:
    """Expand phrase groups "(a b/c d/)" into plain strings (cartesian product).

    A group of single words ("(want/wish/hope)") becomes one token "want|wish|hope" (optional
    if it has an empty alternative) rather than several patterns: fewer patterns, faster matcher.
    """
    m = re.search(r"\(([^()]*)\)", pattern)
    if not m:
        return [" ".join(pattern.split())]
    head, tail = pattern[: m.start()], pattern[m.end():]
    alts = m.group(1).split("/")
    words = [a.strip() for a in alts if a.strip()]
    optional = len(words) < len(alts)
    parts = "|".join(words).split("|")
    mergeable = (
        bool(words)
        and all(" " not in w and not w.startswith("~") and w not in ("#", "$") for w in words)
        and not any(w.endswith("?") for w in words)
        and len({p.startswith("=") for p in parts}) == 1
    )
    if mergeable:
        token = "|".join(words) + ("?" if optional else "")
        return _expand(f"{head} {token} {tail}")
    out: List[str] = []
    for alt in alts:
        out.extend(_expand(f"{head} {alt} {tail}"))
    return out


def _split_first(spec: List[dict]) -> List[List[dict]]:
    """Variants of a pattern whose first token is a plain equality test.

    spaCy evaluates "IN" sets in Python, once per token for every distinct set that can start a
    match; equality tests run in C. Splitting the first token's set into separate patterns keeps
    a 5,000-character message in milliseconds instead of a tenth of a second.
    """
    if not spec:
        return []
    first, rest = spec[0], spec[1:]
    if first.get("OP") == "?":
        required = {k: v for k, v in first.items() if k != "OP"}
        if not rest:
            return _split_first([required])
        return _split_first(rest) + _split_first([required] + rest)
    for attr in ("LEMMA", "LOWER"):
        value = first.get(attr)
        if isinstance(value, dict) and set(value) == {"IN"}:
            others = {k: v for k, v in first.items() if k != attr}
            return [[{**others, attr: v}] + rest for v in value["IN"]]
    return [spec]


def _lemma_table(nlp: Language) -> Optional[Table]:
    """The pipeline's lookup-lemma table (``None`` if it has none: surface forms are used)."""
    try:
        return nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
    except Exception:  # no lemmatizer, or a rule-based one
        return None


_MEMO_SIZE = 512
_shared: Dict[str, "RiskDetector"] = {}
_shared_lock = threading.Lock()
_loaded: Optional["RiskDetector"] = None


def loaded_detector() -> Optional["RiskDetector"]:
    """The detector this process has loaded through ``RiskDetector.shared``, if any."""
    return _loaded


class RiskDetector:
    """Scores one message. Build once (about a second); ``assess`` takes a few milliseconds."""

    def __init__(self, nlp: Language, model: Optional["RiskModel"] = None) -> None:
        self.nlp = nlp
        #: the statistical reading (``bot/nlu/risk_model.py``); ``None``: the lexicon alone
        self.model = model
        self._table = _lemma_table(nlp)
        self._key = lru_cache(maxsize=50000)(self._key_uncached)
        self._memo: "OrderedDict[str, Risk]" = OrderedDict()
        self._memo_lock = threading.RLock()
        self._compiled: Dict[str, _Compiled] = {}
        self.matcher = Matcher(nlp.vocab, validate=True)
        lexicon_words: Set[str] = set()
        for rule in RULES:
            for i, raw in enumerate(rule.patterns):
                for j, text in enumerate(_expand(raw)):
                    spec, at_end, words = self._compile(text)
                    lexicon_words |= words
                    name = f"{rule.name}#{i}.{j}"
                    self._compiled[name] = _Compiled(rule, at_end)
                    self.matcher.add(name, _split_first(spec))
        # Known words: the lemma table answers for inflected forms (its keys are hashes), its
        # values are base forms; stop words and the lexicon's own words complete it.
        vocabulary: Set[str] = set(self._table.values()) if self._table is not None else set()
        vocabulary |= {w.lower() for w in getattr(nlp.Defaults, "stop_words", ())}
        vocabulary |= lexicon_words | EDUCATION_CUES | GAME_CUES | ACCIDENT_CUES
        vocabulary |= {w for macro in MACROS.values() for w in macro.replace("=", "").split("|")}
        self.normaliser = Normaliser(vocabulary, KEYWORDS, self._table)
        self._sets = _WordSets(
            rel=frozenset(self._key(w) for w in _words("REL")),
            qty=frozenset(self._key(w) for w in _words("QTY")),
        )

    @classmethod
    def load(cls, path: Union[str, Path],
             model_path: Optional[Union[str, Path]] = None) -> "RiskDetector":
        """The spaCy pipeline at ``path``, and the risk model at ``model_path`` if given.

        A risk model that cannot be loaded is logged as an error and the lexicon works alone:
        the line must answer, and ``make setup`` rebuilds the model.
        """
        import spacy

        model = None
        if model_path is not None:
            from bot.nlu.risk_model import RiskModel

            try:
                model = RiskModel.load(Path(model_path))
            except Exception as exc:  # noqa: BLE001 - a missing model must not stop the line
                log.error("risk model at %s not loaded (%s): the lexicon reads risk alone",
                          model_path, exc)
        return cls(spacy.load(path), model)

    @classmethod
    def shared(cls, path: Union[str, Path],
               model_path: Optional[Union[str, Path]] = None) -> "RiskDetector":
        """One detector per pipeline path in this process, loaded on first use.

        The NLU's risk guard and the channels' turn gate (``bot/channels/gate.py``) ask the
        same detector, so a message the gate rated is not rated again by the NLU.
        """
        global _loaded
        key = str(Path(path).resolve()) + "|" + (
            str(Path(model_path).resolve()) if model_path is not None else "")
        with _shared_lock:
            detector = _shared.get(key)
            if detector is None:
                detector = _shared[key] = cls.load(path, model_path)
            _loaded = detector
            return detector

    # ---------------------------------------------------------------------------- compile --
    def _key_uncached(self, word: str) -> str:
        w = word.lower()
        if w in _KEY_OVERRIDES:
            return _KEY_OVERRIDES[w]
        if self._table is None:
            return w
        return str(self._table.get(w, w)).lower()

    def _compile(self, text: str) -> Tuple[List[dict], bool, Set[str]]:
        tokens = text.split()
        at_end = bool(tokens) and tokens[-1] == "$"
        if at_end:
            tokens = tokens[:-1]
        spec: List[dict] = []
        words: Set[str] = set()
        for tok in tokens:
            optional = len(tok) > 1 and tok.endswith("?")
            if optional:
                tok = tok[:-1]
            if re.fullmatch(r"~\d", tok):
                spec.extend({"IS_PUNCT": False, "IS_SPACE": False, "OP": "?"}
                            for _ in range(int(tok[1:])))
                continue
            if tok == "#":
                entry: dict = {"LIKE_NUM": True}
            else:
                alts: List[str] = []
                for part in tok.split("|"):
                    if part.startswith("@"):
                        if part[1:] not in MACROS:
                            raise PatternError(f"unknown word class {part} in {text!r}")
                        alts.extend(MACROS[part[1:]].split("|"))
                    else:
                        alts.append(part)
                surface = all(a.startswith("=") for a in alts)
                alts = [a.lstrip("=") for a in alts]
                for a in alts:
                    if not a or "'" in a or not re.fullmatch(r"[a-z0-9&\-]+", a):
                        raise PatternError(f"bad word {a!r} in {text!r}")
                words |= set(alts)
                if surface:
                    entry = {"LOWER": {"IN": sorted(set(alts))}}
                else:
                    entry = {"LEMMA": {"IN": sorted({self._key(a) for a in alts})}}
            if optional:
                entry["OP"] = "?"
            spec.append(entry)
        if not spec or all(e.get("OP") == "?" for e in spec):
            raise PatternError(f"empty pattern {text!r}")
        return spec, at_end, words

    # ----------------------------------------------------------------------------- assess --
    def assess(self, text: str) -> Risk:
        """The risk in one message. Never raises; never logs the text.

        Answers are remembered for the last few hundred texts (a ``Risk`` is immutable), and
        one thread at a time scores: the SMS channel's turns run in a thread of their own.
        """
        with self._memo_lock:
            if not isinstance(text, str):
                return self._assess_guarded(text)
            known = self._memo.get(text)
            if known is not None:
                self._memo.move_to_end(text)
                return known
            risk = self._memo[text] = self._assess_guarded(text)
            if len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
            return risk

    def _assess_guarded(self, text: str) -> Risk:
        try:
            if not isinstance(text, str):
                text = "" if text is None else str(text)
            if len(text) > _MAX_CHARS:
                half = _MAX_CHARS // 2
                text = text[:half] + "\n" + text[-half:]
            if not text.strip():
                return NONE
            doc = self._doc(self.normaliser.normalise(text))
            risk = self._assess(doc)
            if self.model is not None:
                risk = self._with_model(risk, doc)
            return risk
        except Exception as exc:  # pragma: no cover - defensive: a bug must not lose a message
            # Unread is not safe: a message the detector could not read goes to a human.
            log.error("risk detector failed (%s); reporting urgent", type(exc).__name__)
            return Risk("urgent", ("detector_error",))

    def level(self, text: str) -> str:
        """Just the level (for ``risk_eval.evaluate``)."""
        return self.assess(text).level

    def prepare(self, text: str) -> str:
        """The text as the risk model reads it: normalised, each word its lemma key, then
        the lexicon's own reading as marker words (its level and signals: ``negated``,
        ``idiom``, ``education`` ...), so the model learns how far to trust the lexicon's
        silence and its frames."""
        doc = self._doc(self.normaliser.normalise(text))
        return _prepared(doc, self._assess(doc))

    def _with_model(self, risk: Risk, doc: Doc) -> Risk:
        """The higher of the lexicon's reading, weighed by the model (``_weighed``), and the
        model's own.

        The frames that lower the lexicon cap the model's reading at concern too: an
        educational or general frame (an essay, a question of fact, the news) only when nothing
        in the message is in the first person, and a joke (laughter with an "if").
        """
        reading = self.model.read(_prepared(doc, risk))
        risk = self._weighed(risk, reading.p_urgent)
        level = reading.level
        if _RANK[level] >= _RANK["urgent"]:
            words = {t.lemma_ for t in doc} | {t.lower_ for t in doc}
            outside = unquoted_words([t.lemma_ for t in doc], [t.lower_ for t in doc])
            acts = bool({"act_in_progress", "overdose", "at_height", "means"} & set(risk.signals))
            if prose_frame(words, outside, self._sets.rel, acts) or joke(words):
                level = "concern"
        if _RANK[level] <= risk.rank:
            return risk
        signals = tuple(s for s in risk.signals if s not in ("education", "idiom", "negated"))
        return Risk(level, tuple(sorted(set(signals) | {"model_" + level}, key=_signal_rank)))

    def _weighed(self, risk: Risk, p_urgent: float) -> Risk:
        """The lexicon's urgent reading, unless the model is confident its words are not
        risk here.

        Words alone cannot tell "I wanted to die when I was 15, I'm doing great now", a lyric
        or a carer's question about warning signs from risk now, and on blind batches 19-31
        they were 62 of the 72 false alarms; the model, which reads the whole message and
        the lexicon's reading with it, scored none of the 542 urgent messages with a
        first-person lexicon hit below 0.3. So an urgent reading stands unless the model's
        urgent probability is under a bar chosen on the training corpus by cross-validation
        (``RiskModel.bars``): a low one when the writer says it of themselves, a higher one
        when the words are about someone else or no one. An imminent reading always stands;
        so does everything without a model. A reading set aside is still concern, with the
        marker ``unconfirmed`` for the console, and the model's own reading may still raise
        it.
        """
        bar = self.model.bars.get(risk.basis) if risk.level == "urgent" else None
        if bar is None or p_urgent >= bar:
            return risk
        kept = tuple(s for s in risk.signals if s not in ("education", "idiom", "negated"))
        return Risk("concern", tuple(sorted(set(kept) | {"unconfirmed"}, key=_signal_rank)))

    def _doc(self, text: str) -> Doc:
        doc = self.nlp.make_doc(text)
        for tok in doc:
            tok.lemma_ = self._key(tok.lower_)
        return doc

    def _assess(self, doc: Doc) -> Risk:
        if len(doc) == 0:
            return NONE
        ctx = _Context(doc, self._sets)
        raw = []
        for match_id, start, end in self.matcher(doc):
            comp = self._compiled[doc.vocab.strings[match_id]]
            if comp.at_end and end < len(doc) and not ctx.is_clause_break(end):
                continue
            raw.append((comp.rule, start, end))
        if not raw:
            return NONE

        idioms = [(s, e, r) for r, s, e in raw if r.idiom]
        hits: List[_Hit] = []
        markers: Set[str] = set()
        for rule, start, end in raw:
            if rule.idiom:
                if rule.level != "none":
                    hits.append(_Hit(rule, start, end, rule.level, rule.signals))
                continue
            if any(s < end and start < e for s, e, _ in idioms):
                markers.add("idiom")
                continue
            hit = self._score(rule, start, end, ctx, markers)
            if hit is not None:
                hits.append(hit)

        # Rules that need company ("I've got the rope", "I'm at the station") count only beside
        # another urgent signal; alone they say nothing.
        solid = [h for h in hits if not h.rule.context and _RANK[h.level] >= _RANK["urgent"]]
        if not solid:
            hits = [h for h in hits if not h.rule.context]

        # A statement of intention with "now/tonight" ("I'm going to kill myself tonight").
        for h in hits:
            if h.rule.intent and h.level == "urgent" and not h.negated and h.person != "generic":
                if ctx.intent_now(h.start, h.end):
                    h.level = "imminent"
                    h.signals = tuple(dict.fromkeys(h.signals + ("plan",)))
        # Being at a weak place (a station, a river) is imminent only with risk beside it.
        _apply_frames(hits, ctx, markers)
        return _combine(hits, markers)

    def _score(self, rule: Rule, start: int, end: int, ctx: "_Context",
               markers: Set[str]) -> Optional[_Hit]:
        level = rule.level
        signals = rule.signals
        person = ctx.person(start, end)
        if person == "generic" and ctx.disclosure:
            person = "first"
        if rule.qty and not ctx.overdose_amount(start, end):
            return None
        if rule.accident and ctx.near(start, end, ACCIDENT_CUES, 8):
            markers.add("idiom")
            return None
        if rule.others:
            return self._score_others(rule, start, end, ctx, markers)
        if rule.third_only:
            subject = ctx.subject(start)
            if subject != "third":
                return None
            person = "third"
        if rule.first_only:
            subject = ctx.subject(start)
            if subject == "third":
                signals = ("safeguarding",)
            elif subject != "first":
                return None
        if rule.needs_negation:
            if not ctx.doubted(start):
                return None
            return _Hit(rule, start, end, level, signals, False, person)
        negated = rule.negatable and ctx.negated(start)
        hit = _Hit(rule, start, end, level, signals, negated, person)
        if negated:
            markers.add("negated")
            if rule.act:
                hit.level = "urgent"
            else:
                hit.level = LEVELS[max(0, _RANK[level] - 1)]
                hit.signals = ("negated",) if hit.level != "none" else ()
            return hit
        if rule.act:
            if ctx.is_history(start, end):
                hit.level = "urgent"
            if person == "third":
                hit.signals = signals + ("third_party_risk",)
            return hit
        exempt = not rule.person or not rule.negatable
        if rule.topic:
            # A bare mention is about the person unless the message is a question of fact, a
            # definition, study, news or fiction, or is about people in general.
            if ctx.educational or person == "generic" or (ctx.question and not ctx.has_first
                                                          and not ctx.has_third):
                hit.level, hit.signals = "concern", ("education",)
                markers.add("education")
        elif not exempt and level != "concern":
            if person == "generic" or (ctx.question and not ctx.has_first and not ctx.has_third):
                hit.level, hit.signals = "concern", ("education",)
                markers.add("education")
        if hit.level in ("urgent", "imminent") and person == "third" and (
            "safeguarding" not in hit.signals
        ):
            hit.signals = hit.signals + ("third_party_risk",)
        return hit

    def _score_others(self, rule: Rule, start: int, end: int, ctx: "_Context",
                      markers: Set[str]) -> Optional[_Hit]:
        """Violence towards a person: needs an intention and says who is at risk from whom."""
        if not ctx.has_before(start, _OTHERS_INTENT, 5):
            return None
        subject = ctx.subject(start)
        if subject == "first":
            signals: Tuple[str, ...] = ("risk_to_others",)
        elif subject == "third":
            signals = ("safeguarding",)
        else:
            return None
        if ctx.has_any(GAME_CUES):
            markers.add("idiom")
            return _Hit(rule, start, end, "concern", ("distress",))
        if ctx.negated(start):
            markers.add("negated")
            return _Hit(rule, start, end, "concern", ("negated",), True, subject)
        return _Hit(rule, start, end, "urgent", signals, False, subject)


# ------------------------------------------------------------------- message frames --
# Frames read the whole message and can lower a match the words alone made urgent, each for a
# reason a clinician would accept; each leaves a marker in the signals so the console (and the
# risk model, which reads them) can see why. None of them touches a message that also says
# something about now ("again", "tonight") or that names an act under way outside the frame.

#: strong signs that a message is about a video game (not "level", "boss", "character")
_GAME_STRONG = frozenset(
    """game games gaming gamer minecraft fortnite roblox gta warzone halo zelda skyrim elden
    pokemon npc npcs respawn respawned respawning multiplayer pvp pve xbox playstation ps4 ps5
    valorant overwatch apex sims tf2 csgo cs2 lobby noob noobs hitbox speedrun speedrunning
    controller twitch streamer spawn spawned oneshot one-shot potion potions loot fps""".split())
#: laughter and "not meant for you": the joke frame needs one of these
_LAUGH = frozenset("lol lool lmao lmfao haha hahaha hahah rofl jk jokes joking 😂 🤣 😆 😹".split())
#: signs that a life is better now: the past frame needs one of these
_RECOVERED = frozenset(
    """recovered recovery clean better well ok okay alright fine good great stable thriving
    healed survived survivor proud milestone 🎉 happy grand rebuilt settled
    thankful""".split())
#: phrases (over the lemma keys, or the words as written) that say the past is over: "all in
#: the past", "came out the other side", "haven't had them since", "your line helped me then"
_RECOVERED_PHRASES = re.compile(
    r"\b(all in the past|in the past now|behind me now|(come|came) out the other side"
    r"|be clear since|not (have|do) (them|it) since|not get them any ?more"
    r"|not have them any ?more|no thought like th(is|at)|(you|line|service|text) helped"
    r"|helped me (back )?then)\b")
#: "I'm 42 now", "now I am 30": the writer tells a past from a later age
_AGE_NOW = re.compile(r"\b(i be ([1-9]\d) now|now i be ([1-9]\d))\b")
#: in the sentence of a match, these put it in the last day whatever else the message says
#: ("I'm 42 now and fine, but I took an overdose an hour ago")
#: ("today" is not one: "5 years clean today" is a milestone)
_RECENT = frozenset("""tonight minute minutes min mins hour hours hr hrs earlier morning
    afternoon evening""".split())
#: a decade: "the 90s", "in the eighties"
_DECADE = re.compile(r"^((19|20)?[0-9]0s|seventies|eighties|nineties)$")
_SPANS = frozenset("""year years yr yrs month months day days week weeks ages""".split())
#: spans long enough that "N of them since" is a milestone, not a fresh wound
_LONG_SPANS = frozenset("""year years yr yrs month months ages age""".split())
_FEW = frozenset("one two three four few several many".split())
#: said of a past that is over: "came through it", "that's long gone", "got help"
_RECOVERED_PAIRS = (("came", "through"), ("come", "through"), ("long", "gone"), ("got", "help"),
                    ("had", "treatment"), ("counselling", "worked"), ("therapy", "worked"),
                    ("counselling", "helped"), ("therapy", "helped"))
#: words that put risk back in the present and switch the past frame off
_PRESENT = frozenset("""again relapse relapsed lately recently currently anymore
    struggle struggling urge urges tempt tempted""".split())
#: a hypothetical about someone else: "what do I say if a friend ever tells me ..."
_HYPOTHETICAL = frozenset("ever case prepared prepare".split())
#: a real person's words reported in the past ("he said he's going to...", "she texted me"):
#: the hypothetical and screen-story frames are off, someone has really said it
_REPORTED = frozenset("said told texted messaged posted wrote rang".split())
#: media a person watches or hears (with _MEDIA): a character's act is not the writer's
_SCREEN = frozenset("""storyline soap telly tv advert sings singer sung tune album
    eastenders corrie emmerdale hollyoaks netflix theatre panto gig""".split())
#: a joke said in earnest: the joke frame is off
_EARNEST = frozenset("tonight seriously srsly honestly genuinely actually tbh ngl".split())


def _earnest(words: Set[str]) -> bool:
    """A joke said in earnest: "seriously", "not (even/fully) joking", "been thinking"."""
    return bool(words & _EARNEST) or ({"not", "joking"} <= words) or (
        {"been", "thinking"} <= words) or ({"be", "think"} <= words and "been" in words)
_YEAR = re.compile(r"(19|20)\d\d$")


#: prose about suicide rather than a person: lectures, papers, guidance, case vignettes
_ACADEMIC = frozenset(
    """abstract methods results conclusion conclusions objective participants cohort sample
    module slide slides lecture seminar tutorial vignette curriculum syllabus outcome outcomes
    evidence clinician clinicians practitioner practitioners guideline guidelines guidance
    postvention prevalence incidence associated association factor factors epidemiology
    assessment screening protocol policy framework literature review meta-analysis
    questionnaire scale c-ssrs cssrs nice study studies qualitative quantitative interviewed
    interviews findings analysis trial background proportion significant elevated owing
    population populations""".split())


def first_person(words: Set[str]) -> bool:
    """Does the writer speak of themselves? "we/us/our" count, except in prose with two or
    more academic markers ("we examined", "our findings")."""
    if words & _FIRST:
        return True
    return bool(words & {"we", "us", "our", "ourselves"}) and len(words & _ACADEMIC) < 2


#: prose about other people: the news, a film, a book, a song, history, an essay. Narrower than
#: the lexicon's EDUCATION_CUES on purpose: "what does that mean", "is that a sign" and "which
#: course of action" are what a frightened relative asks in an emergency.
_MEDIA = frozenset(
    """news article report documentary film movie novel book song lyrics lyric episode series
    character characters play musical poem poet author history historical century statistics
    statistic essay dissertation thesis research researchers lecture module coursework
    assignment textbook wikipedia""".split())


def educational(words: Set[str]) -> bool:
    """Prose about suicide rather than a person: an academic or media frame."""
    return bool(words & _ACADEMIC or words & _MEDIA)


def prose_frame(words: Set[str], outside_quotes: Set[str], rel: frozenset,
                acts: bool) -> bool:
    """The message is prose about suicide in which no one real is at risk now: a frame, no
    first person (outside quotes), and, unless it is plainly academic (two markers or more),
    no relative or friend named and no act under way ("Mum has taken all her tablets, what
    does that mean" is an emergency, not a question of fact)."""
    if not educational(words) or first_person(outside_quotes):
        return False
    if len(words & _ACADEMIC) >= 2:
        return True
    return not acts and not (words & rel)


def joke(words: Set[str]) -> bool:
    """Laughter with an "if" or a chat it was not meant for, not said in earnest. (A game
    named anywhere is not enough to cap the model: "gave my PS5 to my cousin" is a farewell.)"""
    return bool(words & _LAUGH) and bool(
        "if" in words or {"chat", "group"} <= words or "wrong" in words) and not _earnest(words)


_QUOTES = frozenset('"“”«»‘’\'')


def unquoted_words(keys: Sequence[str], lower: Sequence[str]) -> Set[str]:
    """The message's words outside double quotation marks: a quoted patient ("I wish I
    wouldn't wake up") in a lecture slide is not the writer speaking."""
    out: Set[str] = set()
    inside = False
    for k, w in zip(keys, lower, strict=True):
        if w in _QUOTES:
            inside = not inside
            continue
        if not inside:
            out.add(k)
            out.add(w)
    return out if not inside else set(keys) | set(lower)  # unbalanced: read it all


def _quoted(lower: Sequence[str]) -> List[bool]:
    """For each token: is it inside quotation marks? (Unbalanced marks: nothing is.)"""
    flags, inside = [], False
    for w in lower:
        if w in _QUOTES:
            inside = not inside
            flags.append(False)
            continue
        flags.append(inside)
    return flags if not inside else [False] * len(lower)


def _present(ctx: "_Context") -> bool:
    """Does the message put risk in the present ("again", "urges", "tonight")? Not when the
    word is negated: "no urges, just memories", "don't hurt myself anymore"."""
    return any((k in _PRESENT or w in _PRESENT) and not ctx.negated(i)
               for i, (k, w) in enumerate(zip(ctx.keys, ctx.lower, strict=True)))


def _recovered(ctx: "_Context", words: Set[str]) -> bool:
    """Does the message say life is better now? A word of it ("doing well now", "proud"), an
    ending said of the past ("came through it", "that's long gone"), a span of time without it
    ("haven't for years", "havent in ages"), or a long span since it ("5 years since")."""
    if words & _RECOVERED:
        return True
    keys = ctx.keys
    if _RECOVERED_PHRASES.search(" ".join(keys)) or _RECOVERED_PHRASES.search(
            " ".join(ctx.lower)):
        return True
    for i, k in enumerate(keys):
        prev = keys[i - 1] if i else ""
        if {(a, b) for a in (prev, ctx.lower[i - 1] if i else "")
                for b in (k, ctx.lower[i])} & set(_RECOVERED_PAIRS):
            return True
        if k in _LONG_SPANS:
            # "5 years since my overdose" (not "hurting myself since year 9")
            if (prev.isdigit() or prev in _NUMBER_WORDS or prev in _FEW) \
                    and "since" in keys[i + 1:i + 3]:
                return True
            back = set(keys[j] for j in ctx._back(i, 8))
            if {"for", "in", "over"} & back and _NEG_CUES & back:
                return True
    return False


def _apply_frames(hits: List[_Hit], ctx: "_Context", markers: Set[str]) -> None:
    """Lower matches that a game, a joke, a recovered past or prose explain (in place)."""
    words = set(ctx.keys) | set(ctx.lower)
    acts = any({"act_in_progress", "overdose", "at_height", "means"} & set(h.signals)
               for h in hits if _RANK[h.level] >= _RANK["urgent"])
    # Prose about suicide with no first person in it (a paper, a lecture, the news, a case
    # vignette): nothing in it is about the writer, so nothing in it is above concern.
    if prose_frame(words, unquoted_words(ctx.keys, ctx.lower), ctx.rel, acts):
        for h in hits:
            if _RANK[h.level] >= _RANK["urgent"]:
                h.level, h.signals = "concern", ("education",)
                markers.add("education")
        return
    # "the urges are back", "it's come back": the past has returned
    returned = any(ctx.keys[i] == "back" and i > 0 and ctx.keys[i - 1] in (
        "be", "come", "creep", "crept", "came", "coming", "get", "got")
        for i in range(len(ctx.keys)))
    present = _present(ctx)
    recovered = _recovered(ctx, words)
    age_now = bool(_AGE_NOW.search(" ".join(ctx.keys)))
    quoted = _quoted(ctx.lower)
    screen = bool(words & (_MEDIA | _SCREEN))
    # ... said as a fact, not in a condition ("if a student ever said ...")
    reported = any(w in _REPORTED and not {"ever", "if"} & set(ctx.lower[max(0, i - 2):i])
                   for i, w in enumerate(ctx.lower))
    for h in hits:
        if _RANK[h.level] < _RANK["urgent"] or h.negated:
            continue
        sid = ctx.sent_id[h.start]
        sentence = {ctx.keys[i] for i in range(len(ctx.keys)) if ctx.sent_id[i] == sid} | {
            ctx.lower[i] for i in range(len(ctx.lower)) if ctx.sent_id[i] == sid}
        about_other = bool({"safeguarding", "risk_to_others", "third_party_risk"}
                           & set(h.signals))
        # A game: the same sentence names one ("kms so I respawn", "jumped off the cliff in
        # zelda"). Risk to or from a real person is not a game.
        boss_fight = "boss" in sentence and bool(sentence & {"fight", "battle", "raid"})
        if (sentence & _GAME_STRONG or boss_fight) and not about_other and not _earnest(words):
            h.level, h.signals = "none", ()
            markers.add("idiom")
            continue
        # A joke: laughter, and a trigger that is an "if" or a chat it was not meant for.
        # A conditional "if they lose I'm jumping off" is not under way; an act is never a joke.
        if (words & _LAUGH and not about_other
                and not {"act_in_progress", "overdose"} & set(h.signals)
                and (h.level == "urgent" or "if" in sentence)
                and ("if" in sentence or {"chat", "group"} <= words or "wrong" in words)
                and not _earnest(words)):
            h.level, h.signals = "concern", ("distress",)
            markers.add("idiom")
            continue
        # A song, a film, a soap: the words are a character's or a singer's ("the episode
        # where he jumps off the bridge", a lyric in quotation marks), and no one the writer
        # knows is named, nor anything under way.
        acts_here = bool({"act_in_progress", "overdose"} & set(h.signals))
        if screen and not acts_here and not reported and not words & ctx.rel and (
                (h.end > h.start and all(quoted[h.start:h.end])) or (about_other and h.person != "first")):
            h.level, h.signals = "concern", ("education",)
            markers.add("education")
            continue
        # A hypothetical about someone else: "what should I say if a mate ever tells me he
        # wants to end it", "want the number saved just in case". Nobody is at risk now.
        if about_other and not acts_here and "if" in sentence and words & _HYPOTHETICAL \
                and not present and not reported:
            h.level, h.signals = "concern", ("education",)
            markers.add("education")
            continue
        # A recovered past: this sentence is in the past and the message says life is better.
        # "4 years clean", "500 days sh free", "2 yrs since I last hurt myself", "haven't for
        # years": a span free of it is a past, and is itself the sign of a life better now
        spans = bool(sentence & _SPANS)
        clean_for = spans and bool(sentence & {"clean", "free", "without"}) \
            and "again" not in sentence
        since_then = spans and bool(sentence & {"since", "back"}) or any(
            ctx.keys[i] == "back" and ctx.keys[i + 1] == "then"
            for i in range(len(ctx.keys) - 1) if ctx.sent_id[i] == sid)
        # scars are the marks of a past: "old scars", or any scars in a message that says
        # the past is over ("haven't for years ... my daughter saw the scars")
        old_scars = bool(sentence & {"scar", "scars"}) and ("old" in sentence or recovered)
        # told from a later age ("I took an overdose at 19. I'm 42 now") or a decade ago
        later = (age_now or any(_DECADE.match(w) for w in sentence)) and "today" not in sentence
        # ("years ago" is history, through is_history; "twenty minutes ago" is an emergency)
        if (ctx.is_history(h.start, h.end) or clean_for or since_then
                or old_scars or later
                or any(_YEAR.match(w) for w in sentence)) \
                and (recovered or clean_for) and not present and not sentence & _RECENT \
                and not returned:
            h.level, h.signals = "concern", ("history",)
            markers.add("history")


def _combine(hits: Sequence[_Hit], markers: Set[str]) -> Risk:
    if not hits:
        return Risk("none", tuple(sorted(markers, key=_signal_rank)))
    top = max(_RANK[h.level] for h in hits)
    if top == 0:
        return Risk("none", tuple(sorted(markers, key=_signal_rank)))
    signals: Set[str] = set()
    for h in hits:
        if _RANK[h.level] > 0:
            signals |= set(h.signals)
    signals |= markers
    return Risk(LEVELS[top], tuple(sorted(signals, key=_signal_rank)), _basis(hits, top))


def _basis(hits: Sequence[_Hit], top: int) -> str:
    """What an urgent lexicon reading rests on: ``first`` when a hit at that level is the
    writer's own (not negated), ``cue`` otherwise; "" for any other level. An imminent reading
    (an act under way, a plan with its time, the means at hand) needs no basis: it stands."""
    if top != _RANK["urgent"]:
        return ""
    urgent = [h for h in hits if _RANK[h.level] == top]
    return "first" if any(h.person == "first" and not h.negated for h in urgent) else "cue"


def _signal_rank(signal: str) -> Tuple[int, str]:
    try:
        return (_SIGNAL_ORDER.index(signal), signal)
    except ValueError:
        return (len(_SIGNAL_ORDER), signal)


@dataclass(frozen=True)
class _WordSets:
    rel: frozenset
    qty: frozenset


class _Context:
    """Facts about one normalised message that the scoring rules ask for."""

    def __init__(self, doc: Doc, sets: _WordSets) -> None:
        self.doc = doc
        self.rel = sets.rel
        self.qty = sets.qty
        self.keys = [t.lemma_ for t in doc]
        self.lower = [t.lower_ for t in doc]
        n = len(doc)
        self.sent_id: List[int] = []
        self.clause_id: List[int] = []
        sent = clause = 0
        for i, t in enumerate(doc):
            txt = t.text
            sent_break = txt in _SENT_END or t.is_space or (t.is_punct and set(txt) <= set(".!?"))
            clause_break = sent_break or txt in _CLAUSE_END or self.keys[i] in _CLAUSE_WORDS
            if sent_break:
                sent += 1
            if clause_break:
                clause += 1
            self.sent_id.append(sent)
            self.clause_id.append(clause)
        key_set = set(self.keys)
        self.key_set = key_set
        self.has_first = bool(key_set & _FIRST)
        self.has_third = bool(key_set & {"he", "she"}) or any(
            self.keys[i] in self.rel and i > 0 and self.keys[i - 1] in _POSSESSIVE
            for i in range(n)
        )
        self.educational = bool(key_set & EDUCATION_CUES) or bool(set(self.lower) & EDUCATION_CUES)
        words = [t.lower_ for t in doc if not (t.is_punct or t.is_space)]
        self.disclosure = False
        self.question = bool(words) and (words[0] in _WH or any(t.text == "?" for t in doc))
        # "Is it normal to want to die?", "Anyone else feel like ending it?": questions that
        # are disclosures, about the asker, whatever their grammar.
        lowered = set(words)
        if ("normal" in lowered or ("else" in lowered and lowered & {"anyone", "anybody"})
                or words[:2] == ["is", "it"] and len(words) > 2
                and words[2] in ("bad", "wrong", "ok", "okay", "weird", "selfish", "stupid")):
            self.question = False
            self.has_first = True
            self.disclosure = True

    # -- structure --------------------------------------------------------------------------
    def is_clause_break(self, i: int) -> bool:
        t = self.doc[i]
        return t.text in _CLAUSE_END or t.is_punct or t.is_space or self.keys[i] in _CLAUSE_WORDS

    def _back(self, start: int, limit: int, same: str = "clause") -> Iterable[int]:
        ids = self.clause_id if same == "clause" else self.sent_id
        j = start - 1
        while j >= 0 and start - j <= limit and ids[j] == ids[start]:
            yield j
            j -= 1

    # -- questions the rules ask ------------------------------------------------------------
    def negated(self, start: int) -> bool:
        for j in self._back(start, 5):
            if self.keys[j] in _NEG_CUES:
                nxt = self.keys[j + 1] if j + 1 < len(self.keys) else ""
                if nxt in _PSEUDO_NEG_NEXT:
                    continue
                if self.keys[j] == "never" and nxt in ("feel", "be") and j + 2 < len(self.keys) \
                        and self.keys[j + 2] in ("so", "this", "more", "such", "as", "that"):
                    continue  # "I've never felt so low": an intensifier, not a negation
                return True
        return False

    def doubted(self, start: int) -> bool:
        """A negation or doubt anywhere shortly before, pseudo-negations included ("I don't
        think I can ...", "not sure I can ...")."""
        return any(self.keys[j] in _NEG_CUES or self.keys[j] in ("doubt", "unsure")
                   for j in self._back(start, 8, same="sentence"))

    def subject(self, start: int) -> str:
        """Who the clause before ``start`` is about: first, third, generic or unknown."""
        for j in self._back(start, 12, same="sentence"):
            k = self.keys[j]
            # "my son", "a friend", "my best mate", "my neighbour's kids"
            before = {self.lower[i] for i in range(max(0, j - 2), j)}
            if k in self.rel and before & (_POSSESSIVE | {"a", "the", "'s", "our"}):
                return "third"
            if k in _FIRST:
                return "first"
            if k in _PLURAL and self._generic_antecedent(j):
                return "generic"  # "if someone says they want to ...", "ask someone if they're"
            if k in _THIRD or k in _PLURAL:
                return "third"
            if k in _GENERIC:
                return "generic"
        return "unknown"

    def _generic_antecedent(self, j: int) -> bool:
        """A "they" whose nearest person before it, in its sentence, is someone in general."""
        for i in range(j - 1, max(-1, j - 15), -1):
            if self.sent_id[i] != self.sent_id[j]:
                return False
            k = self.keys[i]
            if k in ("me", "us"):
                continue  # "if someone tells me they ...": the listener, not the subject
            if k in _FIRST or k in _THIRD or k in self.rel:
                return False
            if k in ("someone", "somebody", "anyone", "anybody", "person", "people", "student",
                     "patient", "client", "caller", "pupil", "colleague", "customer"):
                return True
        return False

    def person(self, start: int, end: int) -> str:
        span = set(self.keys[start:end])
        if span & {"me", "myself", "my", "i", "us"}:
            return "first"
        if span & {"him", "her", "himself", "herself", "his"}:
            return "third"
        if span & {"yourself", "oneself"}:
            return "generic"
        subject = self.subject(start)
        if span & _PLURAL and subject in ("unknown", "first"):
            return "third"
        if subject == "unknown" and self.has_first:
            return "first"
        return subject

    def near(self, start: int, end: int, words: Iterable[str], window: int) -> bool:
        lo, hi = max(0, start - window), min(len(self.keys), end + window)
        sid = self.sent_id[start]
        return any(
            (self.keys[i] in words or self.lower[i] in words) and self.sent_id[i] == sid
            for i in range(lo, hi)
        )

    def has_before(self, start: int, words: Iterable[str], window: int) -> bool:
        return any(self.keys[j] in words or self.lower[j] in words
                   for j in self._back(start, window, same="sentence"))

    def has_any(self, words: Iterable[str]) -> bool:
        ws = set(words)
        return bool(self.key_set & ws or set(self.lower) & ws)

    def overdose_amount(self, start: int, end: int) -> bool:
        for i in range(start, end):
            k, low = self.keys[i], self.lower[i]
            if low.isdigit() and int(low[:6]) >= _OVERDOSE_MIN:
                return True
            if k in _NUMBER_WORDS and _NUMBER_WORDS[k] >= _OVERDOSE_MIN:
                return True
            if k in self.qty:
                return True
        return False

    def is_history(self, start: int, end: int) -> bool:
        sid = self.sent_id[start]
        for i, k in enumerate(self.keys):
            if self.sent_id[i] != sid:
                continue
            if k in HISTORY_CUES or self.lower[i] in HISTORY_CUES:
                return True
            # "years ago" is history; "an hour ago" is an emergency
            if k == "ago" and i > 0 and self.keys[i - 1] in _PAST_SPANS | {"week", "weeks"}:
                return True
            if k == "last" and i + 1 < len(self.keys) and self.keys[i + 1] in _PAST_SPANS:
                return True
            # "long ago", "a long time ago" ("a short time ago" is not a past)
            if k == "ago" and i > 0 and (self.keys[i - 1] == "long" or (
                    i > 1 and self.keys[i - 1] == "time" and self.keys[i - 2] == "long")):
                return True
            if k == "when" and i + 2 < len(self.keys) and self.keys[i + 1] == "i" \
                    and self.lower[i + 2] in ("was", "were"):
                return True
        return False

    def intent_now(self, start: int, end: int) -> bool:
        sid = self.sent_id[start]
        in_sent = [i for i in range(len(self.keys)) if self.sent_id[i] == sid]
        has_now = any(self.keys[i] in ("now", "tonight", "today") for i in in_sent)
        has_intent = any(self.keys[j] in _INTENT_MARKERS for j in in_sent if j < start)
        return has_now and has_intent


def _prepared(doc: Doc, lexicon: Risk) -> str:
    words = [t.lemma_ for t in doc if not t.is_space]
    markers = ["zzlex" + lexicon.level] + ["zzsig" + s.replace("_", "") for s in lexicon.signals]
    if lexicon.basis:
        markers.append(BASIS_MARKER + lexicon.basis)
    return " ".join(words + markers)


#: the marker word of an urgent lexicon reading's basis in a prepared text (the model reads
#: it, and training finds the examples each bar is chosen on by it)
BASIS_MARKER = "zzbasis"


def _words(macro: str) -> Set[str]:
    return {w.lstrip("=") for w in MACROS[macro].split("|")}


def make_assess(detector: RiskDetector) -> Callable[[str], str]:
    """``text -> level`` for :func:`bot.nlu.risk_eval.evaluate`."""
    return detector.level


__all__ = ["LEVELS", "Risk", "RiskDetector", "PatternError", "make_assess"]
