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
    # are all over 5 here; a duration is never a count).
    cells = list(csv.DictReader(io.StringIO(table.read_text())))
    assert cells and all(_allowed(c["value"]) for c in cells), [
        c for c in cells if not _allowed(c["value"])]
    assert any(c["value"] == suppress.FEWER for c in cells)

    # HTML: the same in every table cell right of the label.
    text = page.read_text()
    numbers = re.findall(r'<td class="n">([^<]*)</td>', text)
    assert numbers
    for value in numbers:
        assert value in (suppress.FEWER, suppress.NOT_SHOWN) or (
            value.endswith(" s") or int(value) >= 5), value

    # A lone suppressed cell in a split of one whole would be recoverable by subtraction.
    for fig in rep.figures:
        if fig.partition:
            assert sum(1 for r in fig.rows if r[1] == suppress.FEWER) != 1, fig.key

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

    # Self-contained: nothing fetched, nothing run.
    assert "<script" not in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "<svg" in text and "<style>" in text
    assert "<text" not in text


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
