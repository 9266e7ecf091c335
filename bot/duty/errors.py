"""``ApiError``: an error a handler means the client to see (own module, so that the
middlewares, the auth helpers and the handlers can all import it without import cycles)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a handler means the client to see: status, a stable code and a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}
