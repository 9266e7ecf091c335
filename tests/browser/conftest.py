"""Browser tests: the real line (``harness.Line``) driven by Debian's Chromium via Playwright.

One line and one browser for the whole session (starting Rasa takes most of a minute); each
test opens its own browser contexts, so no cookies or storage pass between tests. When
Chromium is missing the session first tries ``scripts/ensure-chromium``; only if that cannot
install it do the tests skip, saying why (and in CI, where it must work, they fail).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from .harness import Line, ensure_chromium, launch_chromium

MANAGER = "browser.manager"
MANAGER_NAME = "Sam"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    why = ensure_chromium()
    if why is not None:
        message = f"Chromium is not installed and could not be installed ({why})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def line(tmp_path_factory, chromium) -> Iterator[Line]:
    # After `chromium`, so that a machine without a browser does not start the line for nothing.
    running = Line(tmp_path_factory.mktemp("browser-line"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def manager(line) -> tuple[str, str]:
    """A duty manager's username and password on the line under test."""
    password = secrets.token_urlsafe(18)
    line.add_staff(MANAGER, password, "duty_manager", MANAGER_NAME)
    return MANAGER, password


def pytest_collection_modifyitems(session, config, items) -> None:
    """Run the browser tests last, so the line and Chromium they share for the session are
    started after, and stopped before, nothing else still needs the machine's two cores."""
    here = os.path.dirname(__file__)
    mine = [item for item in items if str(item.path).startswith(here + os.sep)]
    if mine:
        others = [item for item in items if not str(item.path).startswith(here + os.sep)]
        items[:] = others + mine
