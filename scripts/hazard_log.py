"""The hazard log: docs/safety/hazards.yml checked against the DCB0129 risk matrix and the tests
it names, and rendered as docs/safety/hazard-log.md.

    .venv/bin/python scripts/hazard_log.py           # check, then rewrite hazard-log.md
    .venv/bin/python scripts/hazard_log.py --check   # exit 1 if a problem or hazard-log.md is stale

tests/unit/test_hazard_log.py runs the same checks in make test. A control's evidence is a
pytest node id without parameters (``tests/dir/test_file.py::test_name``), found by reading the
file's syntax tree (no import, so a check costs milliseconds and cannot run test code), or
``make TARGET`` for a target the Makefile defines.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

import yaml

ROOT = Path(__file__).resolve().parent.parent
HAZARDS = ROOT / "docs" / "safety" / "hazards.yml"
LOG = ROOT / "docs" / "safety" / "hazard-log.md"

SEVERITIES = ("minor", "significant", "considerable", "major", "catastrophic")
LIKELIHOODS = ("very low", "low", "medium", "high", "very high")
# DCB0129's clinical risk matrix (NHS Digital, "Clinical Risk Management: its Application in the
# Manufacture of Health IT Systems", implementation guidance): the rating for each likelihood
# (row) and severity (column, in SEVERITIES' order).
MATRIX: Dict[str, tuple] = {
    "very high": (3, 4, 4, 5, 5),
    "high": (2, 3, 3, 4, 5),
    "medium": (2, 2, 3, 3, 4),
    "low": (1, 2, 2, 3, 4),
    "very low": (1, 1, 2, 2, 3),
}
RATING_NAMES = {1: "very low", 2: "low", 3: "moderate", 4: "high", 5: "very high"}
ACCEPTABILITY = {
    1: "Acceptable; no action required.",
    2: "Acceptable where the cost of further reduction outweighs the benefit.",
    3: "Undesirable; acceptable only where further risk reduction is impractical.",
    4: "Mandatory elimination of the hazard or addition of controls to reduce the risk.",
    5: "Unacceptable.",
}

HAZARD_FIELDS = ("id", "title", "hazard", "causes", "effects", "initial", "controls", "residual",
                 "residual_risk")
RISK_FIELDS = ("severity", "likelihood", "rating")
NODE = re.compile(r"^(tests/[\w/]+\.py)::(\w+(?:::\w+)?)$")  # a function, or Class::method
MAKE = re.compile(r"^make ([\w-]+)$")


def rating(severity: str, likelihood: str) -> int:
    """The DCB0129 matrix's rating; KeyError/ValueError for a word not on its scales."""
    return MATRIX[likelihood][SEVERITIES.index(severity)]


def load(path: Path = HAZARDS) -> List[Dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("hazards"), list):
        raise ValueError(f"{path}: expected a mapping with a list under 'hazards'")
    return data["hazards"]


def test_names(path: Path) -> Set[str]:
    """The names pytest collects from ``path``: module-level test functions and the test
    methods of Test classes (read from the syntax tree, not imported)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    names.add(f"{node.name}::{item.name}")
    return names


def make_targets(root: Path = ROOT) -> Set[str]:
    text = (root / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):", text, flags=re.M))


def evidence_problem(item: Any, root: Path = ROOT, _cache: Optional[dict] = None) -> Optional[str]:
    """None when ``item`` names a test that exists or a make target; otherwise why not."""
    cache = _cache if _cache is not None else {}
    if not isinstance(item, str):
        return f"{item!r} is not a string"
    if "[" in item:
        return f"{item}: name the test without its [parameters]"
    made = MAKE.match(item)
    if made:
        if "make" not in cache:
            cache["make"] = make_targets(root)
        return None if made.group(1) in cache["make"] else f"{item}: no such make target"
    node = NODE.match(item)
    if not node:
        return f"{item}: expected tests/<path>.py::<test name> or make <target>"
    file, name = node.groups()
    path = root / file
    if not path.is_file():
        return f"{item}: no file {file}"
    if file not in cache:
        cache[file] = test_names(path)
    return None if name in cache[file] else f"{item}: no test {name} in {file}"


def _risk_problems(where: str, risk: Any) -> List[str]:
    if not isinstance(risk, dict):
        return [f"{where}: expected severity, likelihood and rating"]
    problems = [f"{where}: missing {f}" for f in RISK_FIELDS if f not in risk]
    if problems:
        return problems
    sev, lik, rat = risk["severity"], risk["likelihood"], risk["rating"]
    if sev not in SEVERITIES:
        problems.append(f"{where}: severity {sev!r} is not one of {', '.join(SEVERITIES)}")
    if lik not in LIKELIHOODS:
        problems.append(f"{where}: likelihood {lik!r} is not one of {', '.join(LIKELIHOODS)}")
    if not problems and rat != rating(sev, lik):
        problems.append(f"{where}: rating {rat!r}, but the DCB0129 matrix gives {rating(sev, lik)} "
                        f"for {sev} severity and {lik} likelihood")
    return problems


def problems(hazards: List[Dict[str, Any]], root: Path = ROOT) -> List[str]:
    """Every problem with ``hazards``, each naming the hazard and field; [] when all is well."""
    out: List[str] = []
    cache: dict = {}
    seen: Set[str] = set()
    for i, hazard in enumerate(hazards):
        if not isinstance(hazard, dict):
            out.append(f"hazards[{i}]: expected a mapping")
            continue
        hid = str(hazard.get("id") or f"hazards[{i}]")
        if hid in seen:
            out.append(f"{hid}: the id is used twice")
        seen.add(hid)
        for field in HAZARD_FIELDS:
            value = hazard.get(field)
            if value is None or value == "" or value == []:
                out.append(f"{hid}: missing {field}")
        for field in ("initial", "residual"):
            if field in hazard:
                out += _risk_problems(f"{hid}.{field}", hazard[field])
        for j, control in enumerate(hazard.get("controls") or []):
            where = f"{hid}.controls[{j}]"
            if not isinstance(control, dict) or not control.get("control"):
                out.append(f"{where}: missing control")
                continue
            evidence = control.get("evidence")
            if not isinstance(evidence, list):
                out.append(f"{where}: evidence must be a list (empty only with a gap)")
                continue
            if not evidence and not control.get("gap"):
                out.append(f"{where}: no evidence and no gap saying why")
            for item in evidence:
                problem = evidence_problem(item, root, cache)
                if problem:
                    out.append(f"{where}: {problem}")
    return out


def _risk(r: Dict[str, Any]) -> str:
    return f"{r['severity']} / {r['likelihood']} / **{r['rating']}** ({RATING_NAMES[r['rating']]})"


def _evidence(item: str) -> str:
    if item.startswith("make "):
        return f"`{item}`"
    file, name = item.split("::", 1)
    return f"`{file}::{name}`"


def render(hazards: List[Dict[str, Any]]) -> str:
    """hazard-log.md: a summary table, then each hazard in full."""
    lines = [
        "# Hazard log",
        "",
        "<!-- Generated from hazards.yml by scripts/hazard_log.py: edit that file, then run",
        "     .venv/bin/python scripts/hazard_log.py (tests/unit/test_hazard_log.py checks they agree). -->",
        "",
        "The manufacturer's draft hazard log of the out-of-hours crisis line, in the shape of",
        "DCB0129. It is not a signed safety case: see [README.md](README.md) for the risk matrix,",
        "the roles a deployment needs, and how this log is kept true to the code.",
        "",
        "Risk is given as severity / likelihood / **rating** (DCB0129 matrix).",
        "",
        "| id | hazard | initial risk | residual risk | open gaps |",
        "|---|---|---|---|---|",
    ]
    for h in hazards:
        gaps = sum(1 for c in h["controls"] if c.get("gap"))
        lines.append(f"| [{h['id']}](#{h['id'].lower()}) | {h['title']} | {_risk(h['initial'])} | "
                     f"{_risk(h['residual'])} | {gaps or ''} |")
    for h in hazards:
        lines += ["", f"## {h['id']}", "", f"**{h['title']}**", "",
                  f"**Hazard.** {h['hazard'].strip()}", "", "**Causes.**", ""]
        lines += [f"- {c}" for c in h["causes"]]
        lines += ["", f"**Effect on a person.** {h['effects'].strip()}", "",
                  f"**Initial risk** (before the controls): {_risk(h['initial'])}", "",
                  "**Controls, and what proves each:**", ""]
        for n, c in enumerate(h["controls"], 1):
            lines.append(f"{n}. {c['control'].strip()}")
            for item in c["evidence"]:
                lines.append(f"   - {_evidence(item)}")
            if c.get("gap"):
                lines.append(f"   - **Gap, no test:** {c['gap'].strip()}")
        lines += ["", f"**Residual risk:** {_risk(h['residual'])}. "
                      f"{ACCEPTABILITY[h['residual']['rating']]}", "",
                  h["residual_risk"].strip()]
        if h.get("actions"):
            lines += ["", "**Actions:**", ""]
            lines += [f"- {a}" for a in h["actions"]]
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if there is a problem or hazard-log.md is stale")
    args = parser.parse_args(argv)
    hazards = load()
    found = problems(hazards)
    for p in found:
        print(f"{HAZARDS.relative_to(ROOT)}: {p}", file=sys.stderr)
    if found:
        return 1
    text = render(hazards)
    if args.check:
        if not LOG.is_file() or LOG.read_text() != text:
            print(f"{LOG.relative_to(ROOT)} is out of date: run scripts/hazard_log.py", file=sys.stderr)
            return 1
        return 0
    LOG.write_text(text)
    print(f"wrote {LOG.relative_to(ROOT)} ({len(hazards)} hazards)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
