"""The bench's memory figures: a process's resident memory counts its children's."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.line import children_of, process_tree, rss_mb


def test_a_process_memory_includes_its_children_from_one_scan():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = process_tree()
        assert child.pid in tree[os.getpid()]
        assert children_of(os.getpid(), tree) == tree[os.getpid()]
        alone = rss_mb(os.getpid(), with_children=False)
        child_mb = rss_mb(child.pid, with_children=False)
        assert alone and child_mb and child_mb > 1.0  # a Python interpreter is several MiB
        # Both readings move a little between samples; the child's share is there.
        assert rss_mb(os.getpid(), True, tree) >= alone + child_mb * 0.9
    finally:
        child.kill()
        child.wait()


def test_a_process_that_has_gone_has_no_memory_figure():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert rss_mb(gone.pid) is None
