"""Who may post to the REST channel (``/webhooks/rest/webhook``).

Anyone could: posting as ``sender=sms-<pseudonym>`` wrote into a texter's conversation (the
console showed it as their own words) and asked where they had said they were; any web page
could do it through a browser with a cross-origin ``text/plain`` post.
"""

from __future__ import annotations

import uuid

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage

from bot import settings as settings_module
from bot.sms.pseudonym import pseudonym
from bot.channels.rest import RestInput

from .test_failsafe import serve

TOKEN = "rest-test-token-0123456789"


class Turns:
    """The bot: records who it heard and answers."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    async def __call__(self, message: UserMessage) -> None:
        self.heard.append(message.sender_id)
        await message.output_channel.send_text_message(message.sender_id, "the bot's answer")


@pytest.fixture
def token(monkeypatch):
    """Set ``RASA_AUTH_TOKEN`` (as production always does); call with None to unset it."""

    def apply(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("RASA_AUTH_TOKEN", raising=False)
        else:
            monkeypatch.setenv("RASA_AUTH_TOKEN", value)
        settings_module.reset()

    yield apply
    settings_module.reset()


async def post(url: str, body, *, query: str = "", headers: dict | None = None,
               as_json: bool = True) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http:
        kwargs = {"json": body} if as_json else {"data": body}
        async with http.post(f"{url}/webhooks/rest/webhook{query}", headers=headers or {},
                             **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize("set_token", [False, True])
async def test_another_channels_conversation_cannot_be_written_into(sqlite_url, token,
                                                                     set_token):
    token(TOKEN if set_token else None)
    auth = {"Authorization": f"Bearer {TOKEN}"} if set_token else {}
    turns = Turns()
    texter = pseudonym("+447700900123")
    carer = uuid.uuid4().hex  # what the web chat issues as a session id
    async with serve(RestInput(turn_timeout_s=2), turns) as url:
        for sender in (texter, texter.upper(), carer):
            status, body = await post(url, {"sender": sender, "message": "what is open near me"},
                                      headers=auth)
            assert status == 403, sender
            assert "another channel" in body["message"]
        assert turns.heard == []
        assert (await post(url, {"sender": "integration-7", "message": "hi"}, headers=auth))[0] == 200
    assert turns.heard == ["integration-7"]


async def test_a_cross_origin_text_plain_post_is_refused(sqlite_url, token):
    # What a web page can send across origins without a preflight.
    token(None)
    turns = Turns()
    async with serve(RestInput(turn_timeout_s=2), turns) as url:
        status, body = await post(url, '{"sender": "someone", "message": "hello"}',
                                  headers={"Content-Type": "text/plain",
                                           "Origin": "http://evil.example"},
                                  as_json=False)
        assert status == 415 and "application/json" in body["message"]
    assert turns.heard == []


async def test_with_a_token_set_only_requests_carrying_it_are_answered(sqlite_url, token):
    token(TOKEN)
    turns = Turns()
    message = {"sender": "integration-1", "message": "hello"}
    async with serve(RestInput(turn_timeout_s=2), turns) as url:
        assert (await post(url, message))[0] == 401
        assert (await post(url, message, query="?token=wrong"))[0] == 401
        assert (await post(url, message, headers={"Authorization": "Bearer wrong"}))[0] == 401
        assert turns.heard == []
        status, body = await post(url, message, query=f"?token={TOKEN}")
        assert status == 200 and body == [{"recipient_id": "integration-1",
                                           "text": "the bot's answer"}]
        status, _ = await post(url, message, headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
    assert turns.heard == ["integration-1", "integration-1"]


async def test_rasas_own_api_takes_the_token_in_a_header_too(sqlite_url, token):
    # Rasa's HTTP API checks ?token= only (rasa.server.requires_auth), which access logs and
    # proxies keep; the line's Rasa server takes the same token as Authorization: Bearer.
    import uuid as _uuid

    from rasa.server import ErrorResponse, requires_auth
    from sanic import Sanic, response

    from tests.webchat.conftest import free_port

    token(TOKEN)
    Sanic.test_mode = True
    app = Sanic(f"rasa_api_{_uuid.uuid4().hex[:8]}")

    @app.get("/status")
    @requires_auth(app, TOKEN)
    async def status(_request):
        return response.json({"model_id": "m"})

    @app.exception(ErrorResponse)
    async def refused(_request, exc: ErrorResponse):  # as Rasa's server answers it
        return response.json(exc.error_info, status=exc.status)

    app.blueprint(RestInput(turn_timeout_s=2).blueprint(Turns()), url_prefix="/webhooks/rest")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    await server.before_start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/status"
            async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                assert resp.status == 200
            async with http.get(url, params={"token": TOKEN}) as resp:
                assert resp.status == 200
            async with http.get(url, headers={"Authorization": "Bearer wrong"}) as resp:
                assert resp.status == 401
            async with http.get(url) as resp:
                assert resp.status == 401
    finally:
        server.close()
        await server.wait_closed()
