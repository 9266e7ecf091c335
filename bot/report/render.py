"""The report as HTML (one self-contained file), CSV and JSON, from suppressed figures only.

The HTML carries its CSS in a ``<style>`` element and each plot as inline SVG drawn by
matplotlib (text as paths, no fonts, no scripts, nothing fetched), so it can be mailed,
opened offline and printed to PDF from any browser. A bar plot draws a suppressed cell as an
empty bar marked "<5"; a month-by-month plot leaves a gap where a share or rate is not shown:
the picture says no more than the table.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from typing import Any

from bot.report.figures import Figure, Report
from bot.report.suppress import FEWER, NOT_SHOWN, headline

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1b1b1b;
max-width:60rem;margin:1.5rem auto;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #ccc;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0}th,td{border:1px solid #bbb;padding:.25rem .6rem;
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#444;font-size:.92rem}.empty{background:#fff6d6;border:1px solid #e0c870;
padding:.6rem 1rem}.plot svg{max-width:100%;height:auto}
section{break-inside:avoid;page-break-inside:avoid}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}
"""


def _minutes(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    seconds = int(round(value))
    return f"{seconds // 60} min {seconds % 60:02d} s"


def cell_text(fig: Figure, column: str, value: Any) -> str:
    if column in fig.seconds:
        return _minutes(value)
    if column in fig.rates and isinstance(value, (int, float)):
        return f"{value:.0f}%"
    return str(value)


def _svg(fig: Figure) -> str:
    return _svg_months(fig) if fig.plot == "months" else _svg_bars(fig)


def _svg_text(canvas) -> str:
    buf = io.StringIO()
    canvas.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


def _svg_months(fig: Figure) -> str:
    """Month by month: each answer as a share of the month's answers, and each rate, as
    lines with a point per month; a month whose share is not shown (a count hidden) is a gap
    in the line, so the picture says no more than the table."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure as Canvas

    months = [str(r[0]) for r in fig.rows]
    x = list(range(len(months)))
    total = fig.columns.index(fig.row_total) if fig.row_total in fig.columns else None
    lines: list[tuple[str, list[float], str]] = []
    for part in fig.row_parts:
        i = fig.columns.index(part)
        ys = [100.0 * r[i] / r[total]
              if total is not None and isinstance(r[i], int) and isinstance(r[total], int)
              and r[total] else float("nan") for r in fig.rows]
        lines.append((part, ys, "-"))
    for rate in fig.rates:
        i = fig.columns.index(rate)
        ys = [float(r[i]) if isinstance(r[i], (int, float)) else float("nan") for r in fig.rows]
        lines.append((rate, ys, "--"))
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "report", "font.size": 9}):
        canvas = Canvas(figsize=(7.5, 2.9))
        ax = canvas.add_subplot()
        colours = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#4a5568"]
        for n, (label, ys, style) in enumerate(lines):
            ax.plot(x, ys, style, marker="o", markersize=3.5, linewidth=1.6,
                    color="#1b1b1b" if style == "--" else colours[n % len(colours)],
                    label=label)
        ax.set_xticks(x, months, rotation=90 if len(months) > 8 else 0)
        ax.set_xlim(-0.5, max(len(months) - 0.5, 0.5))
        ax.set_ylim(0, 100)
        ax.set_ylabel("% of answers; rate: % of surveys" if fig.row_parts
                      else "% of surveys offered")
        ax.spines[["top", "right"]].set_visible(False)
        if fig.row_parts:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                      fontsize=8)
        canvas.subplots_adjust(left=0.08, right=0.68 if fig.row_parts else 0.98, top=0.95,
                               bottom=0.3 if len(months) > 8 else 0.14)
        return _svg_text(canvas)


def _svg_bars(fig: Figure) -> str:
    # The object API, not pyplot: no global figure state, no GUI backend chosen at import,
    # safe in the duty service's threads.
    from matplotlib import rc_context
    from matplotlib.figure import Figure as Canvas

    labels = [str(r[0]) for r in fig.rows]
    values = [r[1] if isinstance(r[1], int) else 0 for r in fig.rows]
    horizontal = max((len(s) for s in labels), default=0) > 12
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "report", "font.size": 9}):
        fig_ = Canvas(figsize=(7.5, 0.32 * len(labels) + 0.8) if horizontal else (7.5, 2.8))
        ax = fig_.add_subplot()
        if horizontal:
            ax.barh(range(len(labels)), values, color="#2b6cb0")
            ax.set_yticks(range(len(labels)), labels)
            ax.invert_yaxis()
        else:
            ax.bar(range(len(labels)), values, color="#2b6cb0")
            ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > 12 else 0)
        for i, row in enumerate(fig.rows):
            if row[1] == FEWER:
                if horizontal:
                    ax.text(0, i, " <5", va="center", fontsize=8, color="#555")
                else:
                    ax.text(i, 0, "<5", ha="center", va="bottom", fontsize=7, color="#555")
        ax.spines[["top", "right"]].set_visible(False)
        # Fixed margins: tight_layout draws the figure twice more (measured: a third of the
        # report's time on bench/report_bench.py's year).
        if horizontal:
            fig_.subplots_adjust(left=0.42, right=0.97, top=0.97,
                                 bottom=0.8 / (0.32 * len(labels) + 0.8) * 0.6)
        else:
            fig_.subplots_adjust(left=0.09, right=0.98, top=0.95,
                                 bottom=0.25 if len(labels) > 12 else 0.12)
        return _svg_text(fig_)


def html_report(rep: Report, header: str = "") -> str:
    """``rep`` must already be suppressed (``suppress.report``). ``header``: HTML put first
    in the body (the console's date form), already escaped by the caller."""
    title = f"Crisis line report: {rep.start:%-d %B %Y} to {rep.end:%-d %B %Y}"
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{CSS}</style></head><body>{header}",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Local time ({html.escape(rep.tz)}), both days included. '
        f"Every count under 5 is shown as \u201c{FEWER}\u201d; nothing here is about one "
        "person: no ids, no numbers, no words anyone wrote.</p>",
    ]
    if rep.empty:
        out.append('<p class="empty"><strong>No data in this range.</strong> Nobody contacted '
                   "the line and no escalation was opened between these dates, so every "
                   "figure below is empty.</p>")
    for fig in rep.figures:
        out.append(f'<section id="{fig.key}"><h2>{html.escape(fig.title)}</h2>')
        if fig.chart and not rep.empty:
            out.append(f'<div class="plot" role="img" aria-label="{html.escape(fig.title)}">'
                       f"{_svg(fig)}</div>")
        head = "".join(f"<th>{html.escape(_heading(fig, c))}</th>" for c in fig.columns)
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
        for row in fig.rows:
            cells = [f"<td>{html.escape(str(row[0]))}</td>"]
            for column, value in zip(fig.columns[1:], row[1:], strict=True):
                cells.append(f'<td class="n">{html.escape(cell_text(fig, column, value))}</td>')
            out.append(f"<tr>{''.join(cells)}</tr>")
        out.append("</tbody></table>")
        if fig.note:
            out.append(f'<p class="note">{html.escape(fig.note)}</p>')
        out.append("</section>")
    if rep.notes:
        out.append('<section id="notes"><h2>Not in this report</h2><ul>')
        out.extend(f"<li>{html.escape(n)}</li>" for n in rep.notes)
        out.append("</ul></section>")
    out.append(f'<p class="note">Made {dt.date.today():%-d %B %Y} by python -m bot.report; '
               "the same figures are in report.csv.</p></body></html>")
    return "\n".join(out)


def _heading(fig: Figure, column: str) -> str:
    return {"p50_seconds": "p50", "p90_seconds": "p90"}.get(column, column)


def _csv_column(fig: Figure, column: str) -> str:
    return f"{column} (%)" if column in fig.rates else column


def csv_report(rep: Report) -> str:
    """One line per cell: figure, row label, column, value (seconds for durations, a
    percentage for a rate, its column named "... (%)")."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["figure", "row", "column", "value"])
    for fig in rep.figures:
        for row in fig.rows:
            for column, value in zip(fig.columns[1:], row[1:], strict=True):
                if isinstance(value, float):
                    value = round(value, 1)
                writer.writerow([fig.key, row[0], _csv_column(fig, column), value])
    return buf.getvalue()


def json_report(rep: Report) -> dict[str, Any]:
    return {
        "from": rep.start.isoformat(),
        "to": rep.end.isoformat(),
        "time_zone": rep.tz,
        "empty": rep.empty,
        "suppressed_below": 5,
        "contacts": headline(rep.contacts),
        "escalations": headline(rep.escalations),
        "figures": [
            {"key": f.key, "title": f.title, "columns": f.columns,
             "rows": [[round(v, 1) if isinstance(v, float) else v for v in r] for r in f.rows],
             **({"note": f.note} if f.note else {})}
            for f in rep.figures
        ],
        "not_recorded": list(rep.notes),
    }


__all__ = ["FEWER", "NOT_SHOWN", "csv_report", "html_report", "json_report"]
