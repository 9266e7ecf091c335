"""``GET /``: the carers' web chat page.

The page is static apart from one value, the Rasa socket URL (``WEBCHAT_SOCKET_URL``), which
goes into a ``<meta>`` tag: the Content-Security-Policy forbids inline scripts. The policy's
``connect-src`` names that one origin (over HTTP polling and WebSocket) and nothing else, so
neither the page nor anything injected into it can talk to a third party.
"""

from __future__ import annotations

from aiohttp import web

from bot.duty.console import _env
from bot.duty.keys import SETTINGS_KEY
from bot.duty.middlewares import BASE_CSP

# Where "Leave this site quickly" goes: a neutral, busy page that looks like ordinary browsing.
QUICK_EXIT_URL = "https://www.bbc.co.uk/weather"


def _socket_origins(url: str) -> str:
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    ws = "wss" if scheme == "https" else "ws"
    return f"{scheme}://{host} {ws}://{host}"


async def webchat_page(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    html = _env().get_template("webchat.html").render(
        socket_url=settings.webchat_socket_url, quick_exit_url=QUICK_EXIT_URL
    )
    csp = BASE_CSP.replace(
        "connect-src 'self'", f"connect-src 'self' {_socket_origins(settings.webchat_socket_url)}"
    )
    return web.Response(
        text=html, content_type="text/html", charset="utf-8",
        headers={"Content-Security-Policy": csp},
    )
