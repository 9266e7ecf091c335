"""The full risk recogniser (lexicon and statistical model) for the unit tests.

The model is the one ``make setup`` built in ``build/risk_model`` when that was built from
today's corpus, lexicon and code (``risk_model.is_current``: the hash of every input); otherwise
it is trained here, in a temporary folder, so these tests never read a stale model.
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
    if risk_model.is_current(risk_model.DEFAULT_OUT):
        return RiskDetector(lexicon.nlp, risk_model.RiskModel.load(risk_model.DEFAULT_OUT))
    out: Path = tmp_path_factory.mktemp("risk_model")
    model, _ = risk_model.build(lexicon.prepare, out)
    return RiskDetector(lexicon.nlp, model)
