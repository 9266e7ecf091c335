"""Train the assistant only when its inputs changed.

The model is named by a hash of everything that shapes it (config, domain, training data, the
spaCy pipeline on disk, the locked dependency versions), so ``make train`` is instant when
nothing changed, and a stale model is never served.

    python -m bot.train            # train if needed; print the model's path
    python -m bot.train --path     # print the path the current inputs would have
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional

from bot.settings import ROOT

MODELS_DIR = ROOT / "models"
INPUTS = [
    "config.yml",
    "domain.yml",
    "data/nlu",
    "data/rules",
    "data/stories",
    "build/spacy_en",
    "requirements.lock",
]
KEEP = 3  # older models kept for a quick roll-back


def _files(paths: Iterable[str], root: Path) -> List[Path]:
    out: List[Path] = []
    for rel in paths:
        path = root / rel
        if path.is_dir():
            out.extend(p for p in sorted(path.rglob("*")) if p.is_file())
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"training input {rel} is missing (run make setup)")
    return out


def inputs_hash(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for path in _files(INPUTS, root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path(root: Path = ROOT) -> Path:
    return MODELS_DIR / f"line-{inputs_hash(root)}.tar.gz"


def _prune(keep: Path) -> None:
    models = sorted(MODELS_DIR.glob("line-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [m for m in models if m != keep][KEEP - 1 :]:
        old.unlink(missing_ok=True)


def train(force: bool = False) -> Path:
    target = model_path()
    if target.exists() and not force:
        print(f"Model is up to date: {target.relative_to(ROOT)}", file=sys.stderr)
        return target
    MODELS_DIR.mkdir(exist_ok=True)
    rasa = Path(sys.executable).with_name("rasa")
    cmd = [
        str(rasa), "train",
        "--config", "config.yml", "--domain", "domain.yml", "--data", "data/nlu", "data/rules",
        "data/stories", "--out", str(MODELS_DIR), "--fixed-model-name", target.name[: -len(".tar.gz")],
    ]
    print(f"Training {target.relative_to(ROOT)} ...", file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, check=True)
    if not target.exists():
        raise RuntimeError(f"rasa train finished but {target} was not written")
    _prune(target)
    return target


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.train")
    parser.add_argument("--path", action="store_true", help="print the model path and exit")
    parser.add_argument("--force", action="store_true", help="train even if up to date")
    args = parser.parse_args(argv)
    if args.path:
        print(model_path())
        return 0
    print(train(force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
