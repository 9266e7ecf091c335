"""Build the line's spaCy pipeline at set-up, with no downloads.

``spacy.blank("en")`` gives the tokenizer; lemmas come from the lookup tables in
``spacy-lookups-data`` (copied into the saved pipeline, so run time needs nothing else); an
entity ruler recognises places from the service directory. Rasa's ``SpacyNLP`` loads the saved
folder by path (``config.yml``).

    python -m bot.nlu.spacy_pipeline build/spacy_en
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, List, Mapping, Optional

import spacy
from spacy.language import Language


def place_patterns() -> List[Mapping]:
    """Entity-ruler patterns for places, from the directory (empty if it has none yet)."""
    try:
        from bot.directory.places import entity_patterns
    except ImportError:
        return []
    return list(entity_patterns())


def build(patterns: Optional[Iterable[Mapping]] = None) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    patterns = list(place_patterns() if patterns is None else patterns)
    if patterns:
        nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    nlp.initialize()
    if patterns:
        # After initialize(), which clears an entity ruler's patterns.
        nlp.get_pipe("entity_ruler").add_patterns(patterns)
    return nlp


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bot.nlu.spacy_pipeline OUTPUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    nlp = build()
    out.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out)
    print(f"spaCy pipeline ({', '.join(nlp.pipe_names)}) saved to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
