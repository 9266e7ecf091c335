"""Risk targets measured through the whole trained NLU pipeline, as POST /model/parse sees it."""

import os

import pytest

from bot.nlu.risk_eval import eval_dir
from bot.train import model_path

pytestmark = pytest.mark.slow


def test_full_pipeline_meets_every_risk_target():
    where = eval_dir()
    if not where.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"evaluation sets missing at {where}")
        pytest.skip(f"evaluation sets not found at {where}")
    assert model_path().exists(), "no model for the current inputs: run `make test`"
    from bot.nlu.model_eval import run

    report = run(model_path(), where)
    assert report.passed, "\n".join(report.lines())
