"""Training data is valid and the trained assistant follows the conversation tests exactly.

The conversation tests run through ``python -m bot.rasa_server``, the entry point production
starts Rasa with, so they prove what the line runs: once as it runs (the speed-ups of
bot/rasa_runtime on), and once with ``RASA_PATCHES=off`` (Rasa as shipped, but for the
conversation memory of risk, which is always on).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.train import model_path

ROOT = Path(__file__).resolve().parents[2]
RASA = str(Path(sys.executable).with_name("rasa"))
# Rasa as the line starts it: the runtime installed first (bot/rasa_server.py).
LINE_RASA = [sys.executable, "-m", "bot.rasa_server"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> Path:
    path = model_path()
    assert path.exists(), "no model for the current inputs: run `make test`, which trains first"
    return path


def test_training_data_is_valid():
    result = subprocess.run(
        [RASA, "data", "validate", "--config", "config.yml", "--domain", "domain.yml",
         "--data", "data/nlu", "data/rules", "data/stories"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("patches", ["on", "off"])
def test_conversations_follow_the_test_stories(model, tmp_path, patches):
    out = tmp_path / "results"
    result = subprocess.run(
        [*LINE_RASA, "test", "core", "--model", str(model),
         "--stories", "tests/conversations/test_stories.yml",
         "--fail-on-prediction-errors", "--out", str(out), "--no-plot"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "RASA_PATCHES": patches},
    )
    active = "speedups" in result.stdout + result.stderr
    assert ("active: memory_guard" in result.stdout + result.stderr), result.stderr[-3000:]
    assert active == (patches == "on"), result.stderr[-3000:]
    failed = out / "failed_test_stories.yml"
    detail = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, detail[-4000:] or (result.stdout[-3000:] + result.stderr[-3000:])
    report = json.loads((out / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0
