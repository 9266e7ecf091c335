"""The risk recogniser (lexicon and model) meets every target on the evaluation sets
(../shared/eval) and on the blind batches in tests/risk_blind.

The sets live outside the repository. Missing in CI is a failure; missing on a developer's
machine skips, saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.nlu import risk_eval
from bot.nlu.risk import RiskDetector


@pytest.fixture(scope="module")
def report(full_detector: RiskDetector) -> risk_eval.Report:
    where = risk_eval.eval_dir()
    if not (where / "risk_dev.tsv").is_file():
        reason = (f"risk evaluation sets not found at {where} "
                  "(set RISK_EVAL_DIR, or check out shared/ beside the repository)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return risk_eval.evaluate(full_detector.level, where)


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


# ------------------------------------------------------------------------ blind batches --
BATCHES = risk_eval.blind_batches()


def test_blind_batches_are_present() -> None:
    assert BATCHES, "tests/risk_blind/batch-*.tsv: the blind test batches are missing"


@pytest.mark.parametrize("batch", BATCHES, ids=[b.stem for b in BATCHES])
def test_blind_batch_meets_the_targets(full_detector: RiskDetector, batch: Path) -> None:
    """The floors of issue 24 on every batch (each was measured blind before any change;
    those before-figures are in docs/risk.md)."""
    report = risk_eval.evaluate_batch(full_detector.level, batch)
    failing = [m.line() + f" failures by cell: {dict(m.failures)}"
               for m in report.metrics if m.n and not m.passed]
    assert not failing, "\n".join(failing)


def test_batch_report_counts_by_cell_and_holds_no_text(tmp_path: Path) -> None:
    batch = tmp_path / "batch-99.tsv"
    batch.write_text(
        "cell\tlevel\ttext\n"
        "setting\timminent\tsample alpha one\n"
        "not_here\turgent\tsample beta two\n"
        "academic\tnone\tsample gamma three\n"
        "idiom\tnone\tsample delta four\n", encoding="utf-8")
    got = {"sample alpha one": "urgent", "sample beta two": "urgent",
           "sample gamma three": "urgent", "sample delta four": "none"}
    report = risk_eval.evaluate_batch(got.get, batch)
    assert report.metric("urgent recall").value == 1.0
    assert report.metric("imminent rated imminent").value == 0.0
    assert report.metric("false alarms, academic").value == 1.0
    assert report.metric("false alarms, realistic").value == 0.0
    assert not report.passed
    assert report.cells["setting"].confusion == {("imminent", "urgent"): 1}
    printed = "\n".join(report.lines()) + str(report.as_json())
    assert "sample" not in printed


def test_training_and_test_corpora_never_mix() -> None:
    """No blind test message (nor any ../shared/eval text) is in the training corpus."""
    from bot.nlu.risk_model import read_corpus

    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    train = {norm(e.text) for e in read_corpus()}
    assert train, "data/risk/train is empty"
    for batch in BATCHES:
        leaked = [t for _, _, t in risk_eval.read_batch(batch) if norm(t) in train]
        assert not leaked, f"{len(leaked)} messages of {batch.name} are in data/risk/train"
    where = risk_eval.eval_dir()
    for path in sorted(where.rglob("*.tsv")) if where.is_dir() else []:
        leaked = [r for r in risk_eval.read_tsv(path) if norm(r.get("text", "")) in train]
        assert not leaked, f"{len(leaked)} texts of {path.name} are in data/risk/train"
