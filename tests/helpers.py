"""Helpers shared by the async test packages (channels, handoff)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable


async def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition"):
    """Poll ``check`` (sync or async) until truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
