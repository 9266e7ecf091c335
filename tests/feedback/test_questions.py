"""data/feedback/questions.yml: the shipped file is valid, drawn from the seven criteria, and a
malformed one is refused naming the file and the field (the line then runs without a survey)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from bot import settings as settings_module
from bot.feedback import questions
from bot.feedback.questions import CRITERIA, SMS_CHARS, FeedbackFileError

SHIPPED = questions.DEFAULT_FILE


def _doc() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def test_the_shipped_file_has_a_default_and_a_carers_set_of_two_or_three_short_questions():
    q = questions.load()
    assert set(q.sets) >= {"default", "carers"}
    for qset in q.sets.values():
        assert 2 <= len(qset) <= 3
        for question in qset:
            assert question.criterion in CRITERIA
            assert len(question.prompt()) <= SMS_CHARS
            assert question.prompt().isascii()  # GSM-7: one SMS each
    assert q.free_text is not None and q.free_text.free_text
    name, asked = q.for_audience("carers")
    assert name == "carers" and asked[-1] == q.free_text
    assert q.for_audience(None)[0] == q.for_audience("young_people")[0] == "default"


def _refused(tmp_path: Path, doc) -> FeedbackFileError:
    path = tmp_path / "questions.yml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(FeedbackFileError) as caught:
        questions.load(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_an_unknown_criterion_is_refused_naming_file_and_field(tmp_path):
    doc = _doc()
    doc["sets"]["carers"]["questions"][1]["criterion"] = "heard"
    err = _refused(tmp_path, doc)
    assert any(p.startswith("sets.carers.questions[1].criterion:") for p in err.problems), err


def test_a_bare_yes_read_as_true_says_to_quote_it(tmp_path):
    text = SHIPPED.read_text(encoding="utf-8").replace('["yes", "partly", "no"]', "[yes, partly, no]", 1)
    err = _refused(tmp_path, text)
    assert any("choices[0]" in p and "quotes" in p for p in err.problems), err


@pytest.mark.parametrize("change, field", [
    (lambda d: d["sets"].pop("default"), "sets"),
    (lambda d: d.pop("offer"), "offer"),
    (lambda d: d["sets"]["default"]["questions"][0].update(choices=["yes"]),
     "sets.default.questions[0].choices"),
    (lambda d: d["sets"]["default"]["questions"][0].update(choices=["yes", "skip"]),
     "sets.default.questions[0].choices"),
    (lambda d: d["sets"]["default"]["questions"][0].update(colour="red"), "sets.default.questions[0].colour"),
    (lambda d: d["sets"]["default"]["questions"].append(dict(d["sets"]["default"]["questions"][0], id="x")),
     "sets.default.questions"),
    (lambda d: d["sets"]["default"]["questions"][2].update(text="x" * 118), "sets.default.questions[2]"),
])
def test_malformed_files_are_refused_naming_the_field(tmp_path, change, field):
    doc = _doc()
    change(doc)
    err = _refused(tmp_path, doc)
    assert any(p.split(":")[0] == field or p.startswith(field) for p in err.problems), err.problems


def test_not_yaml_and_missing_are_refused(tmp_path):
    assert "not valid YAML" in str(_refused(tmp_path, "sets: [\n"))
    with pytest.raises(FeedbackFileError, match="cannot be read"):
        questions.load(tmp_path / "nope.yml")


def test_a_malformed_file_turns_the_survey_off_and_is_logged(tmp_path, monkeypatch, caplog):
    path = tmp_path / "questions.yml"
    path.write_text("version: 2\n", encoding="utf-8")
    monkeypatch.setenv("FEEDBACK_FILE", str(path))
    settings_module.reset()
    questions.reset()
    try:
        with caplog.at_level(logging.ERROR):
            assert questions.configured() is None
        assert str(path) in caplog.text and "version" in caplog.text
        monkeypatch.setenv("FEEDBACK_FILE", "off")
        settings_module.reset()
        assert questions.configured() is None
        monkeypatch.delenv("FEEDBACK_FILE")
        settings_module.reset()
        assert questions.configured() is not None
    finally:
        settings_module.reset()
        questions.reset()
