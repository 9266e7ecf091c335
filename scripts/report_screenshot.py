"""Take the report's screenshots in docs/img/ from a generated year, in Debian's Chromium.

    PYTHONPATH=. .venv/bin/python scripts/report_screenshot.py [--out docs/img]

Makes a temporary SQLite database, imports the shipped directory (its place names), loads a
generated year (``bench/report_data.py``: invented senders, no text), writes the year's report
with ``python -m bot.report``'s own code and captures it with ``/usr/bin/chromium --headless``:

- ``report.png``: the top of the report (overview, contacts by hour, day and channel);
- ``report-unmet-feedback.png``: three later sections as the report draws them: one
  criterion's feedback month by month, carers and service users, unmet need by place.

Nothing is fetched; the HTML is opened from the temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
WIDTH = 1200
LATER = ("feedback_listened", "contacts_by_audience", "unmet_need_by_place")
LATER_HEIGHT = 2000


def _capture(html: Path, png: Path, height: int) -> None:
    subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         f"--window-size={WIDTH},{height}", f"--screenshot={png}", html.as_uri()],
        check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"), help="folder for the PNGs")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from bench import report_data
    from bot.directory import loader
    from bot.report import render, service
    from bot.store import db, migrate

    with tempfile.TemporaryDirectory(prefix="report-shot-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'line.db'}"
        migrate.upgrade(url)
        with db.transaction(url) as session:
            loader.import_directory(loader.DEFAULT_PATH, session)
        engine = db.get_engine(url)
        report_data.load(engine, report_data.generate(conversations=6000, escalations=900,
                                                      year=2025, seed=26))
        report = service.make(engine, dt.date(2025, 1, 1), dt.date(2025, 12, 31),
                              "Europe/London")
        page = Path(tmp) / "report.html"
        page.write_text(render.html_report(report), encoding="utf-8")
        _capture(page, out / "report.png", 2000)
        # Three later sections on their own, as the report draws them.
        text = page.read_text(encoding="utf-8")
        head = text[:text.index("</h1>") + len("</h1>")]
        sections = [text[text.index(f'<section id="{key}">'):] for key in LATER]
        later = Path(tmp) / "later.html"
        later.write_text(head + "".join(s[:s.index("</section>") + len("</section>")]
                                        for s in sections) + "</body></html>",
                         encoding="utf-8")
        _capture(later, out / "report-unmet-feedback.png", LATER_HEIGHT)
        db.dispose_all()
    for name in ("report.png", "report-unmet-feedback.png"):
        print(out / name, (out / name).stat().st_size // 1024, "KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
