"""Training data is valid and the trained assistant follows the conversation tests exactly."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.train import model_path

ROOT = Path(__file__).resolve().parents[2]
RASA = str(Path(sys.executable).with_name("rasa"))

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


def test_conversations_follow_the_test_stories(model, tmp_path):
    out = tmp_path / "results"
    result = subprocess.run(
        [RASA, "test", "core", "--model", str(model),
         "--stories", "tests/conversations/test_stories.yml",
         "--fail-on-prediction-errors", "--out", str(out), "--no-plot"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    failed = out / "failed_test_stories.yml"
    detail = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, detail[-4000:] or (result.stdout[-3000:] + result.stderr[-3000:])
    report = json.loads((out / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0
