"""The full risk recogniser (lexicon and statistical model) for the unit tests.

The model is trained here, in a temporary folder, from the project's training corpus, so these
tests measure what ``make setup`` would build from the same files and never depend on a stale
``build/risk_model``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu import risk_model
from bot.nlu.risk import RiskDetector
from bot.nlu.spacy_pipeline import build


@pytest.fixture(scope="session")
def full_detector(tmp_path_factory: pytest.TempPathFactory) -> RiskDetector:
    lexicon = RiskDetector(build(patterns=[]))
    out: Path = tmp_path_factory.mktemp("risk_model")
    model, _ = risk_model.build(lexicon.prepare, out)
    return RiskDetector(lexicon.nlp, model)
