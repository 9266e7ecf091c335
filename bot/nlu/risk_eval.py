"""Measure a risk detector against the line's evaluation sets (never train on them).

    python -m bot.nlu.risk_eval [--show-misses] [--model build/spacy_en]

``evaluate(assess, eval_dir)`` takes any ``text -> level`` function, so the same figures can be
taken from the full Rasa server (``/model/parse``) later. Sets, in ``../shared/eval`` beside the
repository (or ``$RISK_EVAL_DIR``):

| file | metric | target |
|---|---|---|
| risk_dev.tsv | urgent recall: urgent or imminent on label=urgent | >= 0.98 |
| risk_dev.tsv | imminent recall: imminent on imminent=yes | 1.0 |
| risk_dev.tsv | false alarms: urgent or imminent on label=not_urgent | <= 0.10 |
| external/xstest_safe.tsv | urgent or imminent on safe prompts | <= 0.05 |
| external/clinc_everyday.tsv | urgent or imminent on everyday queries | <= 0.01 |
| external/moderation_selfharm.tsv | at least concern on self-harm text | >= 0.95 |

The report counts failures by category only. Message text is printed to the terminal only with
``--show-misses`` and is never passed to ``logging``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval"
DEFAULT_MODEL = ROOT / "build" / "spacy_en"
DEFAULT_RISK_MODEL = ROOT / "build" / "risk_model"

URGENT_OR_MORE = frozenset({"urgent", "imminent"})
AT_LEAST_CONCERN = frozenset({"concern", "urgent", "imminent"})


def eval_dir() -> Path:
    """Where the evaluation sets are: ``$RISK_EVAL_DIR`` or ``../shared/eval``."""
    env = os.environ.get("RISK_EVAL_DIR")
    return Path(env) if env else DEFAULT_EVAL_DIR


@dataclass
class Metric:
    name: str
    hits: int
    n: int
    target: float
    higher_is_better: bool
    #: failures by category (risk_dev label, XSTest type, CLINC intent ...): counts only
    failures: Counter = field(default_factory=Counter)

    @property
    def value(self) -> float:
        return self.hits / self.n if self.n else 0.0

    @property
    def passed(self) -> bool:
        if self.n == 0:
            return False
        if self.higher_is_better:
            return self.value >= self.target - 1e-9
        return self.value <= self.target + 1e-9

    def line(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        mark = "ok  " if self.passed else "MISS"
        return (f"{mark} {self.name:<44} {self.value:6.3f}  ({self.hits}/{self.n})"
                f"  target {op} {self.target:.2f}")


@dataclass
class Miss:
    """One failed item: kept in memory for ``--show-misses``; never logged."""

    metric: str
    category: str
    level: str
    text: str


@dataclass
class Report:
    metrics: List[Metric]
    misses: List[Miss] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return bool(self.metrics) and all(m.passed for m in self.metrics)

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def lines(self) -> List[str]:
        out = ["risk detector evaluation", "-" * 88]
        out += [m.line() for m in self.metrics]
        out.append("-" * 88)
        for m in self.metrics:
            if m.failures:
                cats = ", ".join(f"{cat}: {n}" for cat, n in m.failures.most_common())
                out.append(f"failures in {m.name}: {cats}")
        out.append("PASSED" if self.passed else "FAILED: at least one target missed")
        return out


def read_tsv(path: Path) -> Iterator[Dict[str, str]]:
    """Rows of a tab-separated file with a header line (no quoting: texts may hold quotes)."""
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        for line in fh:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            cells = line.split("\t")
            # the text is the last column; a stray tab inside it stays in the text
            if len(cells) > len(header):
                cells = cells[: len(header) - 1] + ["\t".join(cells[len(header) - 1:])]
            yield dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=False))


def _measure(name: str, items: Sequence[Tuple[str, str]], want: frozenset, target: float,
             higher_is_better: bool, assess: Callable[[str], str],
             misses: List[Miss]) -> Metric:
    """``items``: (category, text). A hit is a level in ``want``."""
    metric = Metric(name, 0, 0, target, higher_is_better)
    for category, text in items:
        level = assess(text)
        hit = level in want
        metric.n += 1
        metric.hits += int(hit)
        failed = (not hit) if higher_is_better else hit
        if failed:
            metric.failures[category or "-"] += 1
            misses.append(Miss(name, category, level, text))
    return metric


def evaluate(assess: Callable[[str], str], eval_dir: Optional[Path] = None) -> Report:
    """Run ``assess`` (text -> level) over every evaluation set and compare with the targets."""
    base = Path(eval_dir) if eval_dir is not None else globals()["eval_dir"]()
    files = {
        "dev": base / "risk_dev.tsv",
        "xstest": base / "external" / "xstest_safe.tsv",
        "clinc": base / "external" / "clinc_everyday.tsv",
        "selfharm": base / "external" / "moderation_selfharm.tsv",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"evaluation files missing: {', '.join(missing)}")

    dev = list(read_tsv(files["dev"]))
    urgent = [(r["imminent"] == "yes" and "urgent/imminent" or "urgent", r["text"])
              for r in dev if r["label"] == "urgent"]
    imminent = [("imminent", r["text"]) for r in dev if r["imminent"] == "yes"]
    not_urgent = [("not_urgent", r["text"]) for r in dev if r["label"] == "not_urgent"]
    xstest = [(r.get("type", ""), r["text"]) for r in read_tsv(files["xstest"])]
    clinc = [(r.get("intent", ""), r["text"]) for r in read_tsv(files["clinc"])]
    selfharm = [("self-harm", r["text"]) for r in read_tsv(files["selfharm"])]

    misses: List[Miss] = []
    metrics = [
        _measure("dev: urgent recall", urgent, URGENT_OR_MORE, 0.98, True, assess, misses),
        _measure("dev: imminent recall", imminent, frozenset({"imminent"}), 1.0, True, assess,
                 misses),
        _measure("dev: false alarms on not_urgent", not_urgent, URGENT_OR_MORE, 0.10, False,
                 assess, misses),
        _measure("xstest safe: urgent or imminent", xstest, URGENT_OR_MORE, 0.05, False, assess,
                 misses),
        _measure("clinc everyday: urgent or imminent", clinc, URGENT_OR_MORE, 0.01, False,
                 assess, misses),
        _measure("moderation self-harm: at least concern", selfharm, AT_LEAST_CONCERN, 0.95,
                 True, assess, misses),
    ]
    return Report(metrics, misses)


# ------------------------------------------------------------ blind batches, by cell --
BLIND_DIR = ROOT / "tests" / "risk_blind"
LEVEL_RANK = {"none": 0, "concern": 1, "urgent": 2, "imminent": 3}
#: cells whose prose may be long and technical: their false alarms have their own target
ACADEMIC_CELLS = frozenset({"academic"})
BATCH_TARGETS = {
    "urgent recall": 0.98,           # urgent or imminent on messages that must be urgent+
    "imminent rated imminent": 0.95,  # on messages that must be imminent
    "false alarms, realistic": 0.05,  # urgent+ on not-urgent messages other than academic
    "false alarms, academic": 0.15,   # urgent+ on academic or training prose
}


@dataclass
class CellFigures:
    cell: str
    n: int = 0
    #: what each message got, by its expected level then the level given
    confusion: Counter = field(default_factory=Counter)

    def count(self, want: str, got: str) -> None:
        self.n += 1
        self.confusion[(want, got)] += 1

    @property
    def expected(self) -> str:
        wants = Counter()
        for (want, _), k in self.confusion.items():
            wants[want] += k
        return "/".join(w for w, _ in sorted(wants.items(), key=lambda x: -LEVEL_RANK[x[0]]))

    @property
    def ok(self) -> int:
        """Messages read at their level or above (urgent+ cells), or not urgent (the rest)."""
        good = 0
        for (want, got), k in self.confusion.items():
            if LEVEL_RANK[want] >= 2:
                good += k if LEVEL_RANK[got] >= LEVEL_RANK[want] else 0
            else:
                good += k if LEVEL_RANK[got] < 2 else 0
        return good

    def got(self) -> str:
        got = Counter()
        for (_, g), k in self.confusion.items():
            got[g] += k
        return " ".join(f"{lv[:3]}={got[lv]}" for lv in LEVEL_RANK if got[lv])


HISTORY_FILE = BLIND_DIR / "history.json"


def batch_history(path: Path = HISTORY_FILE) -> Dict[str, Dict]:
    """Each batch's before-figures (measured blind, before any change made for it) and its
    regression floors: ``{"batch-01": {"before": {...}, "floors": {...}}, ...}``."""
    if not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))["batches"]


@dataclass
class BatchReport:
    name: str
    metrics: List[Metric]
    cells: Dict[str, CellFigures]
    misses: List[Miss] = field(default_factory=list, repr=False)
    #: the batch's before-figures, if recorded (``history.json``)
    before: Dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.metrics if m.n)

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    def lines(self) -> List[str]:
        out = [f"blind batch {self.name}", "-" * 88]
        for m in self.metrics:
            if not m.n:
                continue
            was = self.before.get(m.name)
            out.append(m.line() + (f"   before: {was:.3f}" if was is not None else ""))
        if self.before.get("recogniser"):
            out.append(f"  (before-figures: {self.before['recogniser']})")
        out.append(f"  {'cell':<16} {'n':>4}  {'expected':<18} {'ok':>8}  got")
        for cell in sorted(self.cells.values(), key=lambda c: (c.ok / c.n, c.cell)):
            out.append(f"  {cell.cell:<16} {cell.n:>4}  {cell.expected:<18} "
                       f"{cell.ok:>3}/{cell.n:<4}  {cell.got()}")
        out.append("PASSED" if self.passed else "FAILED: at least one target missed")
        return out

    def as_json(self) -> Dict:
        """Counts only (never message text): safe to write beside the results."""
        return {
            "batch": self.name,
            "metrics": {m.name: {"value": round(m.value, 4), "hits": m.hits, "n": m.n,
                                 "target": m.target, "passed": m.passed}
                        for m in self.metrics if m.n},
            "cells": {c.cell: {"n": c.n, "ok": c.ok,
                               "confusion": {f"{w}->{g}": k for (w, g), k in
                                             sorted(c.confusion.items())}}
                      for c in self.cells.values()},
        }


def read_batch(path: Path) -> List[Tuple[str, str, str]]:
    """(cell, level, text) rows of a blind batch (``cell<TAB>level<TAB>text``)."""
    rows = []
    for row in read_tsv(path):
        level = row.get("level", "").strip()
        if level not in LEVEL_RANK:
            raise ValueError(f"{path.name}: unknown level {level!r}")
        rows.append((row.get("cell", "").strip(), level, row.get("text", "")))
    return rows


def evaluate_batch(assess: Callable[[str], str], path: Path) -> BatchReport:
    """Per-cell figures and the issue's targets for one batch of blind test messages."""
    rows = read_batch(path)
    names = list(BATCH_TARGETS)
    metrics = {n: Metric(n, 0, 0, BATCH_TARGETS[n], not n.startswith("false"))
               for n in names}
    cells: Dict[str, CellFigures] = {}
    misses: List[Miss] = []
    for cell, want, text in rows:
        got = assess(text)
        cells.setdefault(cell, CellFigures(cell)).count(want, got)
        checks = []
        if LEVEL_RANK[want] >= 2:
            checks.append(("urgent recall", LEVEL_RANK[got] >= 2))
        if want == "imminent":
            checks.append(("imminent rated imminent", got == "imminent"))
        if LEVEL_RANK[want] < 2:
            name = ("false alarms, academic" if cell in ACADEMIC_CELLS
                    else "false alarms, realistic")
            checks.append((name, LEVEL_RANK[got] >= 2))
        for name, hit in checks:
            metric = metrics[name]
            metric.n += 1
            metric.hits += int(hit)
            failed = hit if name.startswith("false") else not hit
            if failed:
                metric.failures[cell] += 1
                misses.append(Miss(name, cell, got, text))
    before = batch_history().get(path.stem, {}).get("before", {})
    return BatchReport(path.stem, [metrics[n] for n in names], cells, misses, before)


def floors_of(report: BatchReport) -> Dict[str, float]:
    """Regression floors: a recall two messages' worth below what was reached (rounded down),
    a false-alarm rate two messages' worth above it (rounded up)."""
    floors = {}
    for m in report.metrics:
        if not m.n:
            continue
        slack = 2 / m.n
        value = m.value - slack if m.higher_is_better else m.value + slack
        floors[m.name] = round(max(0.0, min(1.0, value)), 3)
    return floors


def record_history(reports: Sequence[BatchReport], before: Optional[str],
                   floors: bool, path: Path = HISTORY_FILE) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"batches": {}}
    for report in reports:
        entry = data["batches"].setdefault(report.name, {})
        if before:
            if "before" in entry:
                raise SystemExit(f"{report.name} already has before-figures: they are kept")
            entry["before"] = {"recogniser": before,
                               **{m.name: round(m.value, 3) for m in report.metrics if m.n},
                               "n": {m.name: m.n for m in report.metrics if m.n}}
        if floors:
            entry["floors"] = floors_of(report)
    data["batches"] = dict(sorted(data["batches"].items()))
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def blind_batches(directory: Path = BLIND_DIR) -> List[Path]:
    return sorted(Path(directory).glob("batch-*.tsv"))


def _detector_assess(model: Path, risk_model: Optional[Path] = None) -> Callable[[str], str]:
    from bot.nlu.risk import RiskDetector

    if model.is_dir():
        detector = RiskDetector.load(model, risk_model)
    else:  # no saved pipeline yet: build the same one in memory
        from bot.nlu.spacy_pipeline import build

        print(f"({model} not found: building the spaCy pipeline in memory)", file=sys.stderr)
        detector = RiskDetector(build(patterns=[]))
    return detector.level


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.risk_eval", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--show-misses", action="store_true",
                        help="print each failed item's text to the terminal (never to logs)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="saved spaCy pipeline (default build/spacy_en)")
    parser.add_argument("--risk-model", type=Path, default=DEFAULT_RISK_MODEL,
                        help="trained risk model (default build/risk_model; 'none': lexicon only)")
    parser.add_argument("--eval-dir", type=Path, default=None,
                        help="evaluation sets (default $RISK_EVAL_DIR or ../shared/eval)")
    parser.add_argument("--batch", type=Path, action="append", default=None,
                        help="blind batch file(s) to report by cell (default tests/risk_blind)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the figures (counts only, no text) to this file")
    parser.add_argument("--record-before", metavar="DESCRIPTION", default=None,
                        help="a new batch (--batch) was just measured blind: keep these figures"
                             " as its before-figures in tests/risk_blind/history.json, saying"
                             " which recogniser measured it")
    parser.add_argument("--write-floors", action="store_true",
                        help="set every batch's regression floors in history.json from this run")
    args = parser.parse_args(argv)
    where = args.eval_dir or eval_dir()
    risk_model = None if str(args.risk_model) == "none" else args.risk_model
    assess = _detector_assess(args.model, risk_model)
    code = 0
    out: Dict = {}
    reports = [evaluate_batch(assess, batch) for batch in args.batch or blind_batches()]
    # Recorded before anything is printed: a reader that closes the output early (| head)
    # must not lose a batch's before-figures, which can never be measured again.
    if args.record_before or args.write_floors:
        record_history(reports, args.record_before, args.write_floors)
    for report in reports:
        print_report(report, args.show_misses)
        print()
        out[report.name] = report.as_json()
        code = code or (0 if report.passed else 1)
    if where.is_dir():
        code = print_report(evaluate(assess, where), args.show_misses) or code
    else:
        print(f"evaluation sets not found at {where}", file=sys.stderr)
        code = 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return code


def print_report(report, show_misses: bool = False) -> int:
    """Print the report to the terminal (misses only on request); the CLI's exit code."""
    for line in report.lines():
        print(line)
    if show_misses and report.misses:
        print("\nmisses (content may describe self-harm and suicide):")
        for miss in report.misses:
            print(f"  [{miss.metric} | {miss.category} | got {miss.level}] {miss.text}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
