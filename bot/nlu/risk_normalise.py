"""Text clean-up for the risk detector: SMS spelling, typos, stretched letters, odd characters.

People in crisis type fast, on small keys, at night. Before matching, every message goes through
:func:`Normaliser.normalise`, which returns lower-case text in which the words the risk lexicon
cares about are spelled the standard way ("im gonna od 2nite" -> "i'm going to overdose tonight").

Nothing here raises on any ``str`` and nothing here logs: the text is someone's message.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import product
from typing import Container, Dict, FrozenSet, Iterable, List, Optional, Set

# Whole-word SMS / slang / missing-apostrophe forms. Keys are lower case, values are the standard
# spelling (may be several words). Only unambiguous forms are here: "ill" (sick) is not "i'll",
# "were" is not "we're", "its" and "id" are left alone.
SMS: Dict[str, str] = {
    # pronouns and contractions typed without apostrophes
    "u": "you", "ya": "you", "yu": "you", "ur": "your", "r": "are", "n": "and",
    "im": "i'm", "iam": "i am", "ive": "i've", "ima": "i'm going to", "imma": "i'm going to",
    "i'ma": "i'm going to", "hes": "he's", "shes": "she's", "theyre": "they're",
    "youre": "you're", "whats": "what's", "wats": "what's", "thats": "that's",
    "cant": "can't", "cnt": "can't", "carnt": "can't", "cannot": "can not", "dont": "don't",
    "dnt": "don't", "doesnt": "doesn't", "didnt": "didn't", "wont": "won't", "wouldnt": "wouldn't",
    "couldnt": "couldn't", "shouldnt": "shouldn't", "isnt": "isn't", "arent": "aren't",
    "wasnt": "wasn't", "werent": "weren't", "havent": "haven't", "hasnt": "hasn't",
    "hadnt": "hadn't", "aint": "ain't",
    # going/want/got to
    "wanna": "want to", "wana": "want to", "wannna": "want to", "gonna": "going to",
    "gona": "going to", "finna": "going to", "goin": "going", "gotta": "got to",
    "tryna": "trying to", "hafta": "have to", "dunno": "don't know", "lemme": "let me",
    "gimme": "give me", "kinda": "kind of", "sorta": "sort of",
    # time words
    "2nite": "tonight", "2night": "tonight", "tonite": "tonight", "tnite": "tonight",
    "tonigh": "tonight", "2day": "today", "tday": "today", "2moro": "tomorrow",
    "2morrow": "tomorrow", "tmrw": "tomorrow", "tmr": "tomorrow", "tomoz": "tomorrow",
    "b4": "before", "rn": "right now", "atm": "at the moment", "asap": "now",
    # everyday SMS
    "cuz": "because", "coz": "because", "cos": "because", "bc": "because", "becuz": "because",
    "ppl": "people", "sum1": "someone", "some1": "someone", "no1": "no one", "any1": "anyone",
    "every1": "everyone", "evry1": "everyone", "evry": "every", "wiv": "with",
    "wen": "when", "wat": "what", "wot": "what", "wut": "what", "nvr": "never", "neva": "never",
    "nuffin": "nothing", "nuthin": "nothing", "nothin": "nothing", "abt": "about",
    "bout": "about", "rly": "really", "tho": "though", "thru": "through", "pls": "please",
    "plz": "please", "hubby": "husband", "mam": "mum", "mom": "mum", "ded": "dead",
    "nd": "and", "meself": "myself", "maself": "myself", "mysef": "myself", "myslf": "myself",
    "slef": "self", "kil": "kill", "killl": "kill", "tabs": "tablets", "pils": "pills",
    "nomore": "no more", "alot": "a lot", "hav": "have",
    # risk slang: kms "kill myself", kys "kill yourself", ctb "catch the bus" (suicide, from
    # pro-suicide forums), sewerslide / unalive (euphemisms that dodge social-media filters)
    "kms": "kill myself", "kmss": "kill myself", "kys": "kill yourself",
    "ctb": "kill myself", "sewerslide": "suicide", "sewer-slide": "suicide",
    "unalived": "unalive", "unaliving": "unalive",
    "selfharm": "self harm", "selfharming": "self harming", "selfharmed": "self harmed",
    "od": "overdose", "ods": "overdoses", "od's": "overdoses", "od'd": "overdosed",
    "odd'd": "overdosed", "oded": "overdosed", "od'ed": "overdosed", "odeed": "overdosed",
    "o.d": "overdose", "o.d.": "overdose", "odin": "overdosing", "oding": "overdosing",
    "od'ing": "overdosing", "overdosin": "overdosing",
}

# Letters that stand in for digits in "leet" spellings (su1c1de, k1ll, d3ad).
_LEET = str.maketrans({"1": "i", "3": "e", "4": "a", "0": "o", "5": "s", "@": "a", "$": "s",
                       "!": "i", "7": "t"})

_WORD = re.compile(r"[a-z0-9@$!'.]*[a-z0-9]|[a-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_APOS = re.compile(r"[\u2018\u2019\u201b\u2032\u00b4`]")
_RUNS = re.compile(r"([a-z])\1{2,}")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")
_SPACES = re.compile(r"[ \t]+")

# Multi-word or punctuated spellings fixed before word-level clean-up.
_PHRASES = [
    (re.compile(r"\bself[\s\-_./]*(harm|injur)"), r"self \1"),
    (re.compile(r"\bs/h\b"), "self harm"),
    (re.compile(r"\bmy\s+self\b"), "myself"),
    (re.compile(r"\b(him|her|them|your)\s+self\b"), r"\1self"),
    (re.compile(r"\bany\s+more\b"), "anymore"),
    (re.compile(r"\bsewer\s+slide\b"), "suicide"),
    (re.compile(r"\bo\.\s?d\.?(?=\s|$)"), "overdose "),
    (re.compile(r"\bi\s+m\b"), "i'm"),
    # "want 2 live", "going 2 do it": a 2 after these words is "to", not a number
    (re.compile(r"\b(want|wanna|going|gonna|need|have|has|had|got|like|love|hate|able|try|"
                r"trying|tryin|ready|used|supposed|about|how|way|where|deserve|wish)\s+2\b"),
     r"\1 to"),
    # "overdoes" is a real word (overdo), but in a message that says "took an overdoes" it is
    # overdose; keep it only in "overdoes it".
    (re.compile(r"\boverdoes\b(?!\s+it\b)"), "overdose"),
]


def _osa(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (Levenshtein + adjacent swaps), stopping past limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: List[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(word: str, depth: int) -> Set[str]:
    out = {word}
    frontier = {word}
    for _ in range(depth):
        nxt = set()
        for w in frontier:
            for i in range(len(w)):
                nxt.add(w[:i] + w[i + 1:])
        out |= nxt
        frontier = nxt
    return out


def _max_typos(word: str) -> int:
    """Edit-distance allowed for a key word: none if short, 1 if middling, 2 if long."""
    if len(word) >= 8:
        return 2
    if len(word) >= 5:
        return 1
    return 0


class _Vocabulary:
    """Known words: a set, plus an optional container such as spaCy's lemma table (whose keys
    are hashed, so it can answer "is this a word?" but cannot be listed)."""

    def __init__(self, words: FrozenSet[str], lookup: Optional[Container[str]]) -> None:
        self.words = words
        self.lookup = lookup

    def __contains__(self, word: object) -> bool:
        if word in self.words:
            return True
        try:
            return self.lookup is not None and word in self.lookup
        except Exception:
            return False


class Normaliser:
    """Spelling clean-up bound to a vocabulary (known words) and a list of key words.

    ``vocabulary``: words that are spelled correctly (no fuzzy correction is tried on them).
    ``keywords``: the lexicon's important words; an unknown word within a small edit distance of
    one of them is corrected to it ("suicidle" -> "suicidal", "paracetomol" -> "paracetamol").
    """

    #: fuzzy correction is tried on at most this many distinct unknown words per message, so a
    #: 5,000-character message of noise costs milliseconds, not seconds
    MAX_FUZZY_PER_MESSAGE = 150

    def __init__(self, vocabulary: Iterable[str], keywords: Iterable[str],
                 lookup: Optional[Container[str]] = None) -> None:
        self.keywords = sorted({k for k in keywords if _max_typos(k) > 0 and k.isalpha()})
        self._index: Dict[str, Set[str]] = {}
        for kw in self.keywords:
            for d in _deletes(kw, _max_typos(kw)):
                self._index.setdefault(d, set()).add(kw)
        self.vocabulary = _Vocabulary(
            frozenset(vocabulary) | frozenset(SMS) | frozenset(self.keywords), lookup
        )
        self._fix = lru_cache(maxsize=20000)(self._fix_uncached)

    # -- public ---------------------------------------------------------------------------------
    def normalise(self, text: str) -> str:
        if not isinstance(text, str):
            text = str(text)
        text = unicodedata.normalize("NFKC", text)
        text = _APOS.sub("'", text)
        text = _CONTROL.sub(" ", text)
        # A line break ends a thought in a text message; make it a sentence boundary.
        text = _NEWLINES.sub(" . ", text)
        text = _SPACES.sub(" ", text).lower()
        for rx, repl in _PHRASES:
            text = rx.sub(repl, text)
        budget = [self.MAX_FUZZY_PER_MESSAGE]

        def fix(m: "re.Match[str]") -> str:
            word = m.group(0)
            if word in self.vocabulary and word not in SMS:
                return word
            return self._fix_word(word, budget)

        return _WORD.sub(fix, text).strip()

    # -- word level -----------------------------------------------------------------------------
    def _fix_word(self, word: str, budget: List[int]) -> str:
        # Trailing dots belong to the sentence, not the word ("od'd..." or "tonite.")
        core = word.rstrip(".")
        tail = word[len(core):]
        if core in self.vocabulary and core not in SMS:
            return word
        fuzzy_ok = budget[0] > 0
        if fuzzy_ok:
            budget[0] -= 1
        return self._fix(core, fuzzy_ok) + tail

    def _fix_uncached(self, word: str, fuzzy_ok: bool) -> str:
        if word in SMS:
            return SMS[word]
        # "'s" and "n't" endings on an unknown stem: fix the stem only.
        for suffix in ("'s", "n't", "'m", "'ve", "'ll", "'d", "'re"):
            if word.endswith(suffix) and len(word) > len(suffix):
                stem = word[: -len(suffix)]
                fixed = self._fix_uncached(stem, fuzzy_ok)
                return word if fixed == stem else fixed + suffix
        if not any(ch.isalpha() for ch in word):
            return word  # numbers stay numbers
        squeezed = self._squeeze(word)
        if squeezed is not None:
            return SMS.get(squeezed, squeezed)
        candidates = [word]
        # leet ("su1c1de", "k1ll", "d3ad"): only accepted when it yields a real word, so that
        # "4am" or "10pm" are left alone
        leet = word.translate(_LEET)
        if leet != word and leet.isalpha():
            if leet in SMS:
                return SMS[leet]
            if leet in self.vocabulary:
                return leet
            candidates.append(leet)
        if fuzzy_ok:
            for cand in candidates:
                near = self._nearest_keyword(_RUNS.sub(r"\1\1", cand))
                if near is not None:
                    return near
        return word

    def _squeeze(self, word: str) -> Optional[str]:
        """Undo stretched letters: "sooooo" -> "so", "killlll" -> "kill", "helllp" -> "help"."""
        runs = [m for m in re.finditer(r"([a-z])\1+", word)]
        if not runs or len(runs) > 5:
            return None
        pieces, last = [], 0
        for m in runs:
            pieces.append(word[last:m.start()])
            last = m.end()
        tail = word[last:]
        for choice in product((1, 2), repeat=len(runs)):
            out = "".join(p + m.group(1) * n for p, m, n in zip(pieces, runs, choice, strict=True)) + tail
            if out != word and (out in self.vocabulary or out in SMS):
                return out
        return None

    def _nearest_keyword(self, word: str) -> Optional[str]:
        if len(word) < 4 or not word.isalpha():
            return None
        seen: Set[str] = set()
        for d in _deletes(word, 2 if len(word) >= 7 else 1):
            seen |= self._index.get(d, set())
        best, best_d = None, 99
        for kw in sorted(seen):
            limit = _max_typos(kw)
            # the first letter is rarely wrong; requiring it keeps corrections conservative
            if kw[0] != word[0] and limit < 2:
                continue
            d = _osa(word, kw, limit)
            if d <= limit and d < best_d:
                best, best_d = kw, d
        return best
