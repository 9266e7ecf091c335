"""The hazard log (docs/safety/hazards.yml) is complete, rated by the DCB0129 matrix, names only
tests that exist, and docs/safety/hazard-log.md is what it renders to.

A control that names a misspelt or removed test fails here, so the log cannot claim a proof
the suite no longer has. The checks themselves live in scripts/hazard_log.py (which also
rewrites the Markdown); the tests below with made-up entries show that each check can fail.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("hazard_log", ROOT / "scripts" / "hazard_log.py")
hazard_log = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hazard_log)

HAZARDS = hazard_log.load()
# What issue 28 asks the log to cover, and the hazard that covers it.
REQUIRED = {
    "a missed risk message": "H01",
    "a delayed or lost alert": "H03",
    "a wrong service signposted as open": "H05",
    "a message lost on SMS": "H06",
    "a message lost on web chat": "H07",
    "the wrong person reading a transcript": "H08",
    "a human and the assistant both replying": "H09",
    "a staff phone unreachable": "H04",
    "the database down": "H10",
    "Twilio down": "H11",
}

GOOD = {
    "id": "X1",
    "title": "t",
    "hazard": "h",
    "causes": ["c"],
    "effects": "e",
    "initial": {"severity": "major", "likelihood": "high", "rating": 4},
    "controls": [{"control": "c", "evidence": [
        "tests/unit/test_hazard_log.py::test_the_shipped_log_has_no_problems", "make test"]}],
    "residual": {"severity": "major", "likelihood": "low", "rating": 3},
    "residual_risk": "r",
}


def with_change(**changes):
    entry = copy.deepcopy(GOOD)
    entry.update(changes)
    return [entry]


def test_the_shipped_log_has_no_problems():
    assert hazard_log.problems(HAZARDS) == []


def test_the_markdown_is_what_the_yaml_renders_to():
    assert hazard_log.LOG.read_text() == hazard_log.render(HAZARDS), (
        "docs/safety/hazard-log.md is out of date: run .venv/bin/python scripts/hazard_log.py")


@pytest.mark.parametrize("what,hid", sorted(REQUIRED.items()))
def test_every_hazard_issue_28_names_is_in_the_log(what, hid):
    assert hid in {h["id"] for h in HAZARDS}, f"no hazard for {what}"


def test_every_control_has_evidence_or_says_it_has_none():
    for h in HAZARDS:
        for c in h["controls"]:
            assert c["evidence"] or c.get("gap"), f"{h['id']}: {c['control'][:60]}"


def test_the_matrix_is_dcb0129s():
    # Corners and the diagonal of the published matrix.
    assert hazard_log.rating("minor", "very low") == 1
    assert hazard_log.rating("catastrophic", "very high") == 5
    assert hazard_log.rating("catastrophic", "very low") == 3
    assert hazard_log.rating("minor", "very high") == 3
    diagonal = zip(hazard_log.SEVERITIES, hazard_log.LIKELIHOODS, strict=True)
    assert [hazard_log.rating(s, lik) for s, lik in diagonal] == [1, 2, 3, 4, 5]
    # A rating never falls as severity or likelihood rises.
    for lik in hazard_log.LIKELIHOODS:
        row = [hazard_log.rating(s, lik) for s in hazard_log.SEVERITIES]
        assert row == sorted(row)
    for s in hazard_log.SEVERITIES:
        column = [hazard_log.rating(s, lik) for lik in hazard_log.LIKELIHOODS]
        assert column == sorted(column)


def test_a_good_entry_passes():
    assert hazard_log.problems([copy.deepcopy(GOOD)]) == []


def test_a_misspelt_test_name_is_caught():
    bad = with_change(controls=[{"control": "c", "evidence": [
        "tests/unit/test_hazard_log.py::test_the_shipped_log_has_no_problem"]}])
    assert hazard_log.problems(bad) == [
        "X1.controls[0]: tests/unit/test_hazard_log.py::test_the_shipped_log_has_no_problem: "
        "no test test_the_shipped_log_has_no_problem in tests/unit/test_hazard_log.py"]


@pytest.mark.parametrize("item,problem", [
    ("tests/unit/test_no_such_file.py::test_x", "no file tests/unit/test_no_such_file.py"),
    ("make no-such-target", "no such make target"),
    ("tests/unit/test_domain_responses.py::test_reply_is_one_sms_of_plain_characters[utter_greet]",
     "without its [parameters]"),
    ("test_reply_is_one_sms_of_plain_characters", "expected tests/<path>.py::<test name>"),
    ("tests/unit/test_hazard_log.py::GOOD", "no test GOOD"),
])
def test_evidence_that_names_nothing_real_is_caught(item, problem):
    found = hazard_log.problems(with_change(controls=[{"control": "c", "evidence": [item]}]))
    assert len(found) == 1 and problem in found[0], found


def test_a_rating_the_matrix_does_not_give_is_caught():
    found = hazard_log.problems(with_change(residual={"severity": "major", "likelihood": "low",
                                                      "rating": 2}))
    assert found == ["X1.residual: rating 2, but the DCB0129 matrix gives 3 for major severity "
                     "and low likelihood"]


def test_words_off_the_scales_are_caught():
    found = hazard_log.problems(with_change(initial={"severity": "serious", "likelihood": "often",
                                                     "rating": 3}))
    assert len(found) == 2 and "severity 'serious'" in found[0] and "likelihood 'often'" in found[1]


@pytest.mark.parametrize("field", hazard_log.HAZARD_FIELDS)
def test_a_missing_field_is_caught(field):
    entry = copy.deepcopy(GOOD)
    del entry[field]
    assert any(f"missing {field}" in p for p in hazard_log.problems([entry]))


def test_a_control_without_evidence_needs_a_gap():
    assert hazard_log.problems(with_change(controls=[{"control": "c", "evidence": []}])) == [
        "X1.controls[0]: no evidence and no gap saying why"]
    assert hazard_log.problems(with_change(controls=[{"control": "c", "evidence": [],
                                                      "gap": "none yet"}])) == []


def test_a_test_method_of_a_class_is_found(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "class TestThing:\n    def test_a(self):\n        pass\n\nasync def test_b():\n    pass\n")
    assert hazard_log.test_names(tmp_path / "tests" / "test_x.py") == {"TestThing::test_a", "test_b"}
    assert hazard_log.evidence_problem("tests/test_x.py::test_b", root=tmp_path) is None
