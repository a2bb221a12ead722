"""Server-rendered pages: viewer join page, screen link check, host login redirect, QR code."""

from __future__ import annotations

import httpx
import segno

from tests.helpers import Running, create_room


async def test_viewer_page_shows_join_form_then_room(running: Running) -> None:
    """Without a cookie the phone page asks for a name; after joining it shows the room."""
    room = await create_room(running, "<b>Sale</b>")
    async with httpx.AsyncClient(base_url=running.base) as http:
        first = await http.get(f"/r/{room['id']}")
        assert first.status_code == 200
        assert 'id="join-form"' in first.text
        assert "&lt;b&gt;Sale&lt;/b&gt;" in first.text and "<b>Sale</b>" not in first.text  # autoescaped
        joined = await http.post(f"/api/rooms/{room['id']}/join", json={"name": "Ann"})
        assert joined.status_code == 200
        second = await http.get(f"/r/{room['id']}")
        assert 'id="join-form"' not in second.text and "Ann" in second.text


async def test_unknown_room_page_is_404(running: Running) -> None:
    """A phone page for a room that does not exist is a 404 page."""
    async with httpx.AsyncClient(base_url=running.base) as http:
        response = await http.get("/r/nope")
    assert response.status_code == 404
    assert 'data-error-code="not_found"' in response.text


async def test_screen_needs_its_key(running: Running) -> None:
    """The big screen opens with its key and refuses a missing or foreign one."""
    room = await create_room(running)
    other = await create_room(running)
    async with httpx.AsyncClient(base_url=running.base) as http:
        assert (await http.get(f"/screen/{room['id']}?k={room['screen_key']}")).status_code == 200
        assert (await http.get(f"/screen/{room['id']}")).status_code == 401
        assert (await http.get(f"/screen/{room['id']}?k={other['screen_key']}")).status_code == 401


async def test_console_requires_login(running: Running) -> None:
    """The console redirects to the login without a session and opens after a correct key."""
    room = await create_room(running)
    async with httpx.AsyncClient(base_url=running.base) as http:
        response = await http.get(f"/host/{room['id']}")
        assert response.status_code == 303 and response.headers["location"].endswith("/login")
        bad = await http.post(f"/host/{room['id']}/login", data={"key": "nope"})
        assert bad.status_code == 401
        good = await http.post(f"/host/{room['id']}/login", data={"key": room["host_key"]})
        assert good.status_code == 303
        cookie = good.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        console = await http.get(f"/host/{room['id']}")
        assert console.status_code == 200 and "data-announce-form" in console.text


async def test_login_refuses_cross_site_post(running: Running) -> None:
    """A login form posted from another site is refused (CSRF)."""
    room = await create_room(running)
    async with httpx.AsyncClient(base_url=running.base) as http:
        response = await http.post(
            f"/host/{room['id']}/login",
            data={"key": room["host_key"]},
            headers={"origin": "https://evil.example"},
        )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_qr_code_encodes_the_viewer_url(running: Running) -> None:
    """The QR SVG is segno's encoding of the room's viewer URL."""
    room = await create_room(running)
    async with httpx.AsyncClient(base_url=running.base) as http:
        response = await http.get(f"/r/{room['id']}/qr.svg")
    assert response.headers["content-type"] == "image/svg+xml"
    expected = segno.make(f"{running.base}/r/{room['id']}", error="m")
    assert response.text.startswith("<svg")
    got_matrix = segno.make(f"{running.base}/r/{room['id']}", error="m").matrix
    assert expected.matrix == got_matrix and expected.designator in ("3-M", "4-M", "2-M", "5-M")
    # The SVG draws exactly that matrix: same path as segno's own rendering at the same settings.
    import io

    buffer = io.BytesIO()
    expected.save(buffer, kind="svg", scale=10, border=2, xmldecl=False, svgns=True)
    assert response.content == buffer.getvalue()


async def test_lang_query_and_accept_language(running: Running) -> None:
    """Pages speak Chinese for zh browsers or ?lang=zh-CN, English otherwise."""
    room = await create_room(running)
    async with httpx.AsyncClient(base_url=running.base) as http:
        zh = await http.get(f"/r/{room['id']}", headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"})
        assert '<html lang="zh-CN">' in zh.text and "进入直播间" in zh.text
        en = await http.get(f"/r/{room['id']}?lang=en", headers={"accept-language": "zh-CN"})
        assert '<html lang="en">' in en.text and "Join the live room" in en.text
