"""The deployment examples in deploy/ start what `make run` starts and publish only what the
public needs: Twilio's webhook and the web chat socket on the Rasa server, the rest on the
duty service, nothing of the Rasa server's HTTP API, and no message text in nginx's log."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from bot.settings import load

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string((DEPLOY / "crisis-line.service").read_text())
    return unit


def _nginx() -> str:
    return (DEPLOY / "nginx-crisis-line.conf").read_text()


def _locations(conf: str) -> dict[str, str]:
    """location path -> the upstream it is passed to."""
    found = {}
    for path, body in re.findall(r"location\s+(\S+)\s*\{(.*?)\}", conf, re.S):
        upstream = re.search(r"proxy_pass\s+http://([\w.:]+)", body)
        found[path] = upstream.group(1) if upstream else ""
    return found


def test_the_unit_runs_the_lines_own_supervisor_with_secrets_from_a_file():
    service = _unit()["Service"]
    assert service["ExecStart"].endswith("-m bot.run")
    assert "def main" in (ROOT / "bot" / "run.py").read_text()
    assert service["Restart"] == "always"
    assert service["EnvironmentFile"].startswith("/etc/")
    # No secret in the unit itself (it is world-readable under /etc/systemd/system).
    for line in service.get("Environment", "").split():
        assert not re.search(r"TOKEN|KEY|SECRET|PASSWORD|SID", line)


def test_the_rasa_server_gets_only_the_public_channel_routes():
    conf = _nginx()
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{\s*server\s+([\d.:]+);", conf))
    defaults = load({})
    rasa = next(n for n, a in upstreams.items() if a.endswith(f":{defaults.rasa_port}"))
    duty = next(n for n, a in upstreams.items() if a.endswith(f":{defaults.duty_port}"))
    locations = _locations(conf)
    to_rasa = {path for path, up in locations.items() if up == rasa}
    assert to_rasa == {"/webhooks/sms/", "/socket.io/"}
    assert locations["/"] == duty
    # Twilio's webhook and status callback, and the widget's socket, pass unchanged.
    for public in ("/webhooks/sms/webhook", "/webhooks/sms/status", "/socket.io/"):
        assert any(public.startswith(p) for p in to_rasa)
    # The Rasa server's HTTP API reads and writes conversations: never through the proxy.
    for private in ("/model/parse", "/conversations/x/tracker", "/webhooks/rest/webhook",
                    "/status", "/webhooks/relay/send"):
        assert not any(private.startswith(p) for p in to_rasa)


def test_nginx_logs_no_query_strings_bodies_or_addresses():
    conf = _nginx()
    formats = dict(re.findall(r"log_format\s+(\w+)\s+'([^;]*)';", conf))
    used = re.findall(r"access_log\s+\S+\s+(\w+);", conf)
    assert used and all(name in formats for name in used)
    for name in used:
        for variable in ("$request ", "$request_uri", "$args", "$query_string",
                         "$request_body", "$remote_addr", "$http_x_forwarded_for"):
            assert variable not in formats[name] + " "


def test_the_readme_names_real_files_and_settings():
    readme = (DEPLOY / "README.md").read_text()
    for name in re.findall(r"`deploy/([\w.-]+)`|\| `([\w.-]+)` \|", readme):
        file = next(n for n in name if n)
        assert (DEPLOY / file).exists(), file
    known = (ROOT / "bot" / "settings.py").read_text() + (ROOT / ".env.example").read_text()
    for variable in set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", readme)):
        assert variable in known, variable


def test_nginx_tells_the_duty_service_the_client_and_browsers_to_keep_to_https():
    conf = _nginx()
    duty = re.search(r"location\s+/\s*\{(.*?)\}", conf, re.S).group(1)
    # nginx's own view of the client, replacing any header the client sent, for the
    # console's sign-in limit (believed because the README sets TRUSTED_PROXIES to nginx).
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", duty)
    readme = (DEPLOY / "README.md").read_text()
    assert "TRUSTED_PROXIES=127.0.0.1" in readme
    assert load({"TRUSTED_PROXIES": "127.0.0.1"}).trusted_proxies == ("127.0.0.1/32",)
    assert re.search(r'add_header\s+Strict-Transport-Security\s+"max-age=\d{8,}[^"]*"\s+always;', conf)
    assert re.search(r"server_tokens\s+off;", conf)
