"""What leaves the report: no count under 5, no id, reference, number or text; the files; the
command and its errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys

import pytest

from bench import report_data
from bot.report import __main__ as cli
from bot.report import figures, render, service, suppress
from bot.store import db

TZ = "Europe/London"


@pytest.fixture
def small_world(sqlite_url):
    # Few enough that many cells are under 5, on SQLite (the figures' own tests use both).
    w = report_data.generate(conversations=90, escalations=25, year=2025, seed=3)
    report_data.load(db.get_engine(sqlite_url), w)
    return w


def _allowed(value: str) -> bool:
    if value in (suppress.FEWER, suppress.NOT_SHOWN):
        return True
    try:
        return float(value) >= 5
    except ValueError:
        return False


def test_no_cell_under_5_is_printed_and_nothing_leaks(sqlite_url, small_world, tmp_path):
    rep = service.make(db.get_engine(sqlite_url), dt.date(2025, 1, 1), dt.date(2025, 12, 31), TZ)
    raw = figures.build(db.get_engine(sqlite_url), dt.date(2025, 1, 1), dt.date(2025, 12, 31), TZ)
    # The small year does have cells under 5 to hide (else this test proves nothing).
    assert any(isinstance(v, int) and v < 5 for f in raw.figures for r in f.rows for v in r[1:])
    page, table = service.write(rep, tmp_path)

    # CSV: every value is 5 or more, "fewer than 5" or "not shown" (durations, in seconds,
    # are all over 5 here; a duration is never a count; a rate, in %, is worked out only from
    # counts that are shown).
    cells = list(csv.DictReader(io.StringIO(table.read_text())))
    counts = [c for c in cells if not c["column"].endswith("(%)")]
    assert counts and all(_allowed(c["value"]) for c in counts), [
        c for c in counts if not _allowed(c["value"])]
    assert any(c["value"] == suppress.FEWER for c in cells)
    rates = [c for c in cells if c["column"].endswith("(%)")]
    assert rates and all(c["value"] == suppress.NOT_SHOWN for c in rates)  # few a month

    # HTML: the same in every table cell right of the label.
    text = page.read_text()
    numbers = re.findall(r'<td class="n">([^<]*)</td>', text)
    assert numbers
    for value in numbers:
        assert value in (suppress.FEWER, suppress.NOT_SHOWN) or (
            value.endswith(" s") or value.endswith("%") or int(value) >= 5), value

    # A lone suppressed cell in a split of one whole would be recoverable by subtraction:
    # down every count column of a split, and along a row's parts when its total is shown.
    for fig in rep.figures:
        if fig.partition:
            for i, column in enumerate(fig.columns):
                if column in fig.counts:
                    assert sum(1 for r in fig.rows if r[i] == suppress.FEWER) != 1, (
                        fig.key, column)
        if fig.row_parts:
            total = fig.columns.index(fig.row_total)
            parts = [fig.columns.index(c) for c in fig.row_parts]
            for row in fig.rows:
                if row[total] != suppress.FEWER:
                    assert sum(1 for i in parts if row[i] == suppress.FEWER) != 1, (fig.key, row)
    # A rate is never shown beside a hidden count it comes from.
    for fig in rep.figures:
        for column, (num, den) in fig.rates.items():
            i, n, d = (fig.columns.index(c) for c in (column, num, den))
            for row in fig.rows:
                if suppress.FEWER in (row[n], row[d]):
                    assert row[i] == suppress.NOT_SHOWN, (fig.key, row)
    # The unmet need table names no place and need asked for fewer than 5 times.
    unmet = next(f for f in rep.figures if f.key == "unmet_need")
    assert all(r[1] != suppress.FEWER for r in unmet.rows[:-1])
    # The new figures are there, and have cells to hide in this small year.
    keys = {f.key for f in rep.figures}
    assert {"contacts_by_audience", "unmet_need", "unmet_need_by_need", "unmet_need_by_place",
            "feedback", "feedback_by_month", "feedback_listened"} <= keys

    # JSON: the same rows.
    body = json.dumps(render.json_report(rep))
    for fig in render.json_report(rep)["figures"]:
        for row in fig["rows"]:
            for value in row[1:]:
                assert not (isinstance(value, (int, float)) and value < 5), (fig["key"], row)

    # No sender id, reference, phone number, or anything like them, in any output.
    for out in (text, table.read_text(), body):
        for conv in small_world.conversations:
            assert conv.sender not in out
            assert conv.sender.removeprefix("sms-")[:12] not in out
        assert "G00" not in out  # the generated references
        # (Outside the plots, whose SVG is path coordinates: their words are drawn as paths,
        # never as text, so nothing but the table's figures can be read from them.)
        words = re.sub(r"<svg.*?</svg>", "", out, flags=re.S)
        assert not re.search(r"\+?44\s?7\d{3}|\b07\d{9}\b", words)
        assert "harbour_house" not in out and "Sam" not in out and "staff:" not in out
        # Free text from the survey never; and unmet need only as the directory's places.
        assert report_data.SECRET_COMMENT not in out
        assert "old-district" not in words or "old-district" in [
            r[0] for f in rep.figures for r in f.rows]

    # Self-contained: nothing fetched, nothing run.
    assert "<script" not in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "<svg" in text and "<style>" in text
    assert "<text" not in text


def test_suppression_along_a_row_and_rates_from_shown_counts_only():
    fig = figures.Figure(
        "f", "f", ["month", "offered", "answered", "rate", "yes", "no", "skipped"],
        [["Jan", 20, 9, 45.0, 6, 3, 2],    # "no" hidden: "yes" would give it away (9 - 6)
         ["Feb", 12, 4, 33.3, 4, 0, 5],    # answered hidden: its rate is not shown
         ["Mar", 30, 14, 46.7, 7, 7, 6]],
        counts=("offered", "answered", "yes", "no", "skipped"),
        rates={"rate": ("answered", "offered")}, row_total="answered", row_parts=("yes", "no"))
    out = suppress.figure(fig)
    F, N = suppress.FEWER, suppress.NOT_SHOWN
    assert out.rows == [["Jan", 20, 9, 45.0, F, F, F],
                        ["Feb", 12, F, N, F, F, 5],
                        ["Mar", 30, 14, 46.7, 7, 7, 6]]
    # Down the columns too, until nothing is left to work out: January's lone "no" takes
    # February's (the smallest in its column) with it; each of those rows then has one part
    # hidden beside a shown total, so their "yes" go too; January's lone "skipped" takes
    # February's. March, all 5 or more, is untouched, and so are the rates.
    fig = figures.Figure(
        "f", "f", fig.columns,
        [["Jan", 20, 9, 45.0, 6, 3, 2], ["Feb", 25, 13, 52.0, 8, 5, 5],
         ["Mar", 30, 14, 46.7, 7, 7, 6]],
        counts=fig.counts, rates=fig.rates, row_total="answered", row_parts=("yes", "no"),
        partition=True)
    assert suppress.figure(fig).rows == [["Jan", 20, 9, 45.0, F, F, F],
                                         ["Feb", 25, 13, 52.0, F, F, F],
                                         ["Mar", 30, 14, 46.7, 7, 7, 6]]


def test_suppression_hides_a_second_cell_in_a_split(sqlite_url):
    fig = figures.Figure("x", "x", ["what", "count"], [["a", 3], ["b", 6], ["c", 9]],
                         partition=True)
    out = suppress.figure(fig)
    assert [r[1] for r in out.rows] == [suppress.FEWER, suppress.FEWER, 9]
    timing = figures.Figure("t", "t", ["step", "count", "p50_seconds", "p90_seconds"],
                            [["a", 4, 10.0, 20.0], ["b", 5, 30.0, 40.0], ["c", 0, None, None]],
                            seconds=("p50_seconds", "p90_seconds"))
    out = suppress.figure(timing)
    assert out.rows == [["a", suppress.FEWER, suppress.NOT_SHOWN, suppress.NOT_SHOWN],
                        ["b", 5, 30.0, 40.0],
                        ["c", suppress.FEWER, suppress.NOT_SHOWN, suppress.NOT_SHOWN]]


def test_the_command_writes_an_empty_report_that_says_so(sqlite_url, tmp_path, capsys):
    assert cli.main(["--from", "2020-01-01", "--to", "2020-01-31", "--out", str(tmp_path)]) == 0
    assert "(no data in this range)" in capsys.readouterr().out
    page = (tmp_path / "report.html").read_text()
    assert "No data in this range" in page
    assert (tmp_path / "report.csv").read_text().startswith("figure,row,column,value")


@pytest.mark.parametrize("start,end,message", [
    ("2025-13-01", "2025-12-31", "--from is not a real date"),
    ("01/02/2025", "2025-12-31", "--from must be a date as YYYY-MM-DD"),
    ("2025-02-01", "2025-01-01", "is before --from"),
    ("2025-01-01", "", "--to is required"),
])
def test_a_malformed_date_is_a_clear_error(sqlite_url, tmp_path, capsys, start, end, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--from", start, "--to", end, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_python_m_bot_report_runs(sqlite_url, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bot.report", "--from", "2025-01-01", "--to", "2025-01-31",
         "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "report.html").exists()


def test_last_full_month():
    assert service.last_full_month(dt.date(2026, 3, 15)) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert service.last_full_month(dt.date(2026, 1, 1)) == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))
