"""An unhandled error is answered with the documented error body (API) or a plain page (browsers),
never a traceback, and still with the security headers."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.helpers import Running

SECRET_DETAIL = "connection string postgresql://admin:hunter2@db/prod"


async def _boom(_request: Request) -> Response:
    raise RuntimeError(SECRET_DETAIL)


def _add_failing_routes(running: Running) -> None:
    running.app.router.routes[:0] = [Route("/api/boom", _boom), Route("/boom", _boom)]


async def test_api_fault_is_the_documented_error_body(running: Running) -> None:
    """500 with {"error": {"code": "internal", ...}}; the exception's text is not in it."""
    _add_failing_routes(running)
    async with httpx.AsyncClient(base_url=running.base) as http:
        r = await http.get("/api/boom", headers={"accept": "text/html"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "internal" and r.json()["error"]["message"]
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in r.headers


async def test_page_fault_is_a_plain_page(running: Running) -> None:
    """A browser gets a short page in both languages, no traceback, no script."""
    _add_failing_routes(running)
    async with httpx.AsyncClient(base_url=running.base) as http:
        page = await http.get("/boom", headers={"accept": "text/html,application/xhtml+xml"})
        other = await http.get("/boom")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "出错了" in page.text and "<script" not in page.text and "hunter2" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert other.status_code == 500 and other.json()["error"]["code"] == "internal"
