"""Where a person is: town names, common misspellings, postcode districts, or "rather not say".

``resolve_place("bridgewater")``, ``resolve_place("TA6 3xx")`` and ``resolve_place("near
Yeovil tonight")`` all give a ``Place``; an unknown place gives ``None`` and the caller answers
with national services and says so. Places come from the loaded directory in the database, or
from ``data/services`` when nothing is loaded or the database cannot be reached.

``entity_patterns()`` gives the spaCy entity ruler (``bot/nlu/spacy_pipeline.py``) the same
names: label ``PLACE``, ``id`` the place's key (``unknown_postcode`` for a well-formed postcode
outside the directory, so the caller can still say honestly that it has nothing local).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bot.directory.schema import Directory, DirectoryError, Place

log = logging.getLogger(__name__)

LABEL = "PLACE"
UNKNOWN_POSTCODE = "unknown_postcode"
PREPOSITIONS = ("in", "near", "at", "around", "from", "nr")
_FILLER = set(PREPOSITIONS) | {
    "i", "im", "i'm", "am", "live", "living", "staying", "the", "area", "town", "centre",
    "center", "of", "just", "outside", "by", "me", "is", "its", "it's", "here", "postcode",
    "my", "somerset", "uk", "please", "tonight", "now", "today", "ok", "okay",
}
_FULL_POSTCODE = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][A-Z]{2})\b")
_DISTRICT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?)\b")
_DECLINED = re.compile(
    r"\b(rather not|prefer not|would ?n[o']?t like to|don'?t want to (say|tell|share|give)|"
    r"do not want to (say|tell|share|give)|won'?t say|not (saying|telling|sharing)|"
    r"none of (your|ur) business|private|skip( it| that)?|pass|no comment|"
    r"don'?t know|do not know|dunno|not sure|no idea|anywhere|doesn'?t matter|not given)\b",
    re.IGNORECASE,
)
_JUST_NO = re.compile(r"^\s*(no|nope|nah|no thanks|no thank you|n)\s*[.!]*\s*$", re.IGNORECASE)


def normalise(text: str) -> str:
    """Lower case, '&' as 'and', hyphens and punctuation as spaces, single spaces."""
    text = text.lower().replace("&", " and ").replace("’", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(text.split())


def is_declined(text: Optional[str]) -> bool:
    """True when the person would rather not say where they are (or does not know)."""
    if not text:
        return False
    return bool(_DECLINED.search(text) or _JUST_NO.match(text))


class Gazetteer:
    """Place look-ups over one set of places."""

    def __init__(self, places: Iterable[Place]):
        self.places: Dict[str, Place] = {p.key: p for p in places}
        self.by_postcode: Dict[str, Place] = {
            pc: p for p in self.places.values() for pc in p.postcodes
        }
        self.names: Dict[str, Place] = {}
        for place in self.places.values():
            for word in (place.name, *place.aliases):
                self.names.setdefault(normalise(word), place)
        # Longest first, so "burnham on sea" wins over "burnham".
        self._ordered = sorted(self.names, key=len, reverse=True)
        self._fuzzy = [n for n in self._ordered if not self.names[n].ambiguous]

    def __len__(self) -> int:
        return len(self.places)

    def get(self, key: str) -> Optional[Place]:
        return self.places.get(key)

    def in_county(self, county_key: str) -> List[Place]:
        return [p for p in self.places.values() if p.county == county_key]

    def resolve(self, text: Optional[str], fuzzy: bool = True) -> Optional[Place]:
        if not text or not text.strip():
            return None
        upper = text.upper()
        full = _FULL_POSTCODE.search(upper)
        if full:
            place = self.by_postcode.get(full.group(1))
            return dataclasses.replace(place, postcode=full.group(1)) if place else None
        for district in _DISTRICT.findall(upper):
            place = self.by_postcode.get(district)
            if place:
                return dataclasses.replace(place, postcode=district)

        norm = normalise(text)
        words = norm.split()
        core = " ".join(w for w in words if w not in _FILLER) or norm
        for name in self._ordered:
            if not re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", norm):
                continue
            place = self.names[name]
            if not place.ambiguous or self._ambiguous_ok(place, name, text, core):
                return place
        return self._fuzzy_match(words, core) if fuzzy else None

    @staticmethod
    def _ambiguous_ok(place: Place, name: str, text: str, core: str) -> bool:
        """"Street" is a place on its own, capitalised, or before "Somerset"; not "on the street"."""
        if core == name:
            return True
        if re.search(rf"\b{re.escape(place.name)}\b", text):
            return True
        return bool(re.search(rf"\b{re.escape(name)},? somerset\b", normalise(text)))

    def _fuzzy_match(self, words: Sequence[str], core: str) -> Optional[Place]:
        """Close misspellings, only where a place is expected: a short answer, or after "near"."""
        short = len(core.split()) <= 3
        best: Tuple[float, Optional[Place]] = (0.0, None)
        for size in (3, 2, 1):
            for i in range(len(words) - size + 1):
                if not (short or (i > 0 and words[i - 1] in PREPOSITIONS)):
                    continue
                window = " ".join(words[i : i + size])
                if len(window) < 4 or window in _FILLER:
                    continue
                cutoff = 0.86 if len(window) < 7 else 0.8
                for name in difflib.get_close_matches(window, self._fuzzy, n=1, cutoff=cutoff):
                    score = difflib.SequenceMatcher(None, window, name).ratio()
                    if score > best[0]:
                        best = (score, self.names[name])
        return best[1]


_yaml_cache: Dict[Tuple, Gazetteer] = {}


def _yaml_gazetteer(path: Optional[Path] = None) -> Gazetteer:
    from bot.directory.loader import directory_files, load_directory

    files = directory_files(path)
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())
    cached = _yaml_cache.get(stamp)
    if cached is None:
        try:
            cached = Gazetteer(load_directory(path).places)
        except DirectoryError as exc:
            log.error("directory files do not validate (%d problems); no places known", len(exc.issues))
            cached = Gazetteer(())
        _yaml_cache.clear()
        _yaml_cache[stamp] = cached
    return cached


def gazetteer(session=None) -> Gazetteer:
    """Places from the loaded directory; the YAML files when none is loaded or the DB is down."""
    from bot.directory.loader import places_from_db

    try:
        if session is not None:
            places = places_from_db(session)
        else:
            from bot.store.db import transaction

            with transaction() as s:
                places = places_from_db(s)
        if places:
            return Gazetteer(places)
    except Exception as exc:  # noqa: BLE001  the database being down must not stop an answer
        log.warning("directory places unavailable from the database (%s); using data files",
                    type(exc).__name__)
    return _yaml_gazetteer()


def resolve_place(text: Optional[str], session=None) -> Optional[Place]:
    """The place ``text`` names (town, misspelling, postcode district), or ``None``."""
    if not text or not text.strip():
        return None
    # "Not sure, near Taunton I think" still names Taunton; guessing at misspellings in a
    # refusal would not be honest, so a declining message gets exact matches only.
    return gazetteer(session).resolve(text, fuzzy=not is_declined(text))


def _tokens(text: str) -> List[dict]:
    """A name as a token pattern, split the way spaCy's English tokenizer splits it
    ("Burnham-on-Sea" -> burnham - on - sea), matched on lower case.

    Token patterns, not phrase strings: the ruler would run earlier pipes (the lemmatizer)
    over phrase strings before the pipeline is initialised."""
    return [{"LOWER": t.lower()} for t in re.findall(r"[A-Za-z0-9']+|[^\sA-Za-z0-9']", text)]


def entity_patterns(directory: Optional[Directory] = None) -> List[dict]:
    """spaCy entity-ruler patterns for every place in the directory and its postcode districts."""
    if directory is None:
        from bot.directory.loader import load_directory

        directory = load_directory()
    patterns: List[dict] = []
    for place in directory.places:
        if place.ambiguous:
            # Everyday words: only "Street" capitalised at the start, after "in"/"near", or
            # with "Somerset"; the entity then includes the preposition, which resolve_place drops.
            name = [{"ORTH": t} for t in place.name.split()]
            patterns += [
                {"label": LABEL, "id": place.key, "pattern": [{"IS_SENT_START": True, **name[0]}, *name[1:]]},
                {"label": LABEL, "id": place.key, "pattern": [{"LOWER": {"IN": list(PREPOSITIONS)}}, *name]},
                {"label": LABEL, "id": place.key,
                 "pattern": [*name, {"ORTH": ",", "OP": "?"}, {"LOWER": "somerset"}]},
            ]
        else:
            for word in (place.name, *place.aliases):
                for variant in {word, word.replace("-", " ")}:
                    patterns.append({"label": LABEL, "id": place.key, "pattern": _tokens(variant)})
        for district in place.postcodes:
            d = district.lower()
            patterns += [
                {"label": LABEL, "id": place.key, "pattern": [{"LOWER": d}]},
                {"label": LABEL, "id": place.key,
                 "pattern": [{"LOWER": d}, {"LOWER": {"REGEX": r"^\d[a-z]{2}$"}}]},
                {"label": LABEL, "id": place.key, "pattern": [{"LOWER": {"REGEX": rf"^{d}\d[a-z]{{2}}$"}}]},
            ]
    known = sorted({pc.lower() for p in directory.places for pc in p.postcodes})
    not_known = rf"(?!(?:{'|'.join(known)})$)" if known else ""
    patterns += [
        {"label": LABEL, "id": UNKNOWN_POSTCODE,
         "pattern": [{"LOWER": {"REGEX": rf"^{not_known}[a-z]{{1,2}}\d[a-z\d]?$"}},
                     {"LOWER": {"REGEX": r"^\d[a-z]{2}$"}}]},
    ]
    seen = set()
    unique = []
    for p in patterns:
        marker = repr(p)
        if marker not in seen:
            seen.add(marker)
            unique.append(p)
    return unique
