"""The risk detector meets every target on the evaluation sets (../shared/eval).

The sets live outside the repository. Missing in CI is a failure; missing on a developer's
machine skips, saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.nlu import risk_eval
from bot.nlu.risk import RiskDetector
from bot.nlu.spacy_pipeline import build


@pytest.fixture(scope="module")
def report() -> risk_eval.Report:
    where = risk_eval.eval_dir()
    if not (where / "risk_dev.tsv").is_file():
        reason = (f"risk evaluation sets not found at {where} "
                  "(set RISK_EVAL_DIR, or check out shared/ beside the repository)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    detector = RiskDetector(build(patterns=[]))
    return risk_eval.evaluate(detector.level, where)


@pytest.mark.parametrize("name", [
    "dev: urgent recall",
    "dev: imminent recall",
    "dev: false alarms on not_urgent",
    "xstest safe: urgent or imminent",
    "clinc everyday: urgent or imminent",
    "moderation self-harm: at least concern",
])
def test_target(report: risk_eval.Report, name: str) -> None:
    metric = report.metric(name)
    assert metric.n > 0
    # the message shows counts by category only, never eval text
    assert metric.passed, f"{metric.line()}; failures by category: {dict(metric.failures)}"


def test_report_passes_and_prints(report: risk_eval.Report) -> None:
    lines = report.lines()
    assert report.passed, "\n".join(lines)
    assert lines[-1] == "PASSED"


def test_report_lines_hold_no_message_text(report: risk_eval.Report) -> None:
    printed = "\n".join(report.lines())
    assert all(miss.text not in printed for miss in report.misses if len(miss.text) > 12)


def test_evaluate_counts_and_fails_on_a_bad_detector(tmp_path: Path) -> None:
    """On small sets written here: a detector that says "urgent" to everything fails the
    false-alarm targets; the counting and the categories are right."""
    (tmp_path / "external").mkdir()
    (tmp_path / "risk_dev.tsv").write_text(
        "label\timminent\ttext\n"
        "urgent\tno\tsample one\n"
        "urgent\tyes\tsample two\n"
        "not_urgent\tno\tsample three\n", encoding="utf-8")
    (tmp_path / "external" / "xstest_safe.tsv").write_text(
        "id\ttype\ttext\n1\thomonyms\tsample four\n", encoding="utf-8")
    (tmp_path / "external" / "clinc_everyday.tsv").write_text(
        "intent\ttext\noos\tsample five\n", encoding="utf-8")
    (tmp_path / "external" / "moderation_selfharm.tsv").write_text(
        "text\nsample six\n", encoding="utf-8")

    always_urgent = risk_eval.evaluate(lambda text: "urgent", tmp_path)
    assert always_urgent.metric("dev: urgent recall").value == 1.0
    assert always_urgent.metric("dev: imminent recall").value == 0.0
    assert always_urgent.metric("dev: false alarms on not_urgent").value == 1.0
    assert always_urgent.metric("xstest safe: urgent or imminent").failures == {"homonyms": 1}
    assert not always_urgent.passed

    oracle = {"sample one": "urgent", "sample two": "imminent", "sample six": "concern"}
    perfect = risk_eval.evaluate(lambda text: oracle.get(text, "none"), tmp_path)
    assert perfect.passed, "\n".join(perfect.lines())


def test_missing_files_raise(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        risk_eval.evaluate(lambda text: "none", tmp_path)


def test_eval_dir_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RISK_EVAL_DIR", str(tmp_path))
    assert risk_eval.eval_dir() == tmp_path
    monkeypatch.delenv("RISK_EVAL_DIR")
    assert risk_eval.eval_dir() == risk_eval.ROOT.parent / "shared" / "eval"
