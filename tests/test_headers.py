"""Security headers: on every response, no 'unsafe-inline', no framing but the big screen's, HSTS
only behind an https public URL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from server.config import Settings
from server.headers import HeaderPolicy, content_security_policy
from tests.conftest import make_settings
from tests.helpers import Running, create_room, serve


def _directives(policy: str) -> dict[str, str]:
    return {d.strip().split(" ", 1)[0]: d.strip().partition(" ")[2] for d in policy.split(";")}


def test_policy_allows_no_inline_code_and_no_plugins() -> None:
    """Scripts and styles from this origin only; no inline, no eval, no objects, no <base>."""
    policy = _directives(content_security_policy("'none'"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert "unsafe" not in content_security_policy("*")
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"


async def test_every_surface_has_the_headers(running: Running) -> None:
    """Viewer, console, login, screen, API and static files all carry the headers; only the screen
    may be framed."""
    room = await create_room(running)
    rid = room["id"]
    async with httpx.AsyncClient(base_url=running.base) as http:
        login = await http.post(f"/host/{rid}/login", data={"key": room["host_key"]})
        assert login.status_code == 303
        pages = {
            "viewer": await http.get(f"/r/{rid}"),
            "login": await http.get(f"/host/{rid}/login"),
            "console": await http.get(f"/host/{rid}"),
            "home": await http.get("/"),
            "api": await http.get(f"/api/rooms/{rid}"),
            "static": await http.get("/static/css/base.css"),
            "missing": await http.get("/api/rooms/nope"),
        }
        screen = await http.get(f"/screen/{rid}?k={room['screen_key']}")
    for name, response in pages.items():
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin", name
        assert response.headers["x-frame-options"] == "DENY", name
        policy = _directives(response.headers["content-security-policy"])
        assert policy["frame-ancestors"] == "'none'", name
        assert policy["connect-src"] == f"'self' ws://{running.base.removeprefix('http://')}", name
        assert "strict-transport-security" not in response.headers, name
    assert pages["console"].status_code == 200 and "console" in pages["console"].text
    assert "x-frame-options" not in screen.headers
    assert _directives(screen.headers["content-security-policy"])["frame-ancestors"] == "*"


async def test_hsts_and_secure_cookies_follow_an_https_public_url(tmp_path: Path) -> None:
    """With an https public URL: HSTS on every response and Secure cookies, without asking."""
    settings = make_settings(tmp_path, public_url="https://live.example")
    assert settings.secure_cookies is True
    async with serve(settings) as running:
        room = await create_room(running)
        async with httpx.AsyncClient(base_url=running.base) as http:
            r = await http.post(f"/host/{room['id']}/login", data={"key": room["host_key"]})
            home = await http.get("/")
    assert "secure" in r.headers["set-cookie"].lower()
    assert home.headers["strict-transport-security"] == "max-age=31536000"


def test_hsts_can_be_turned_off_and_is_never_sent_for_http() -> None:
    """LIVEWALL_HSTS=false drops it; an http public URL never sends it."""
    scope = {"type": "http", "path": "/", "headers": [(b"host", b"live.example")], "scheme": "https"}
    off = HeaderPolicy(Settings(public_url="https://live.example", hsts=False))
    plain = HeaderPolicy(Settings(public_url="http://live.example"))
    assert "strict-transport-security" not in dict(off.for_request(scope))
    assert "strict-transport-security" not in dict(plain.for_request(scope))
    assert Settings(public_url="http://live.example").secure_cookies is False


def test_screen_frame_ancestors_is_a_setting() -> None:
    """The screen's framers can be narrowed; a value that would break out of the policy is refused."""
    policy = HeaderPolicy(Settings(screen_frame_ancestors="'self' https://obs.example"))
    headers = dict(policy.for_request({"type": "http", "path": "/screen/r1", "headers": []}))
    assert _directives(headers["content-security-policy"])["frame-ancestors"] == "'self' https://obs.example"
    for bad in ("*; script-src *", "", "a,b"):
        with pytest.raises(ValueError, match="LIVEWALL_SCREEN_FRAME_ANCESTORS"):
            HeaderPolicy(Settings(screen_frame_ancestors=bad))


def test_a_forged_host_is_not_written_into_the_policy() -> None:
    """A Host header that is not a host name leaves connect-src at 'self'."""
    policy = HeaderPolicy(Settings())
    scope = {"type": "http", "path": "/", "headers": [(b"host", b"evil; script-src *")]}
    csp = dict(policy.for_request(scope))["content-security-policy"]
    assert _directives(csp)["connect-src"] == "'self'" and "evil" not in csp
