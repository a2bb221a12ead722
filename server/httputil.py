"""HTTP edge helpers: JSON bodies with a size limit, error translation, same-origin checks, the bearer
header and the client's address (credentials become a Principal in server/rooms/identity.py)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from server.errors import BadMessage, Forbidden, LivewallError, RateLimited, TooLarge

MAX_JSON_BODY_BYTES = 64 * 1024


def error_response(exc: LivewallError) -> JSONResponse:
    headers = retry_after(exc)
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.http_status, headers=headers
    )


def retry_after(exc: LivewallError) -> dict[str, str] | None:
    """The Retry-After header (whole seconds, at least 1) of a refusal that knows when to retry."""
    if isinstance(exc, RateLimited) and exc.retry_after_secs is not None:
        return {"retry-after": str(max(1, math.ceil(exc.retry_after_secs)))}
    return None


async def livewall_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LivewallError)
    return error_response(exc)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) as soon as it is known to be over ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise TooLarge(f"body over {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"body over {limit} bytes")
    return body


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body (empty body: {}); clear errors for anything else."""
    body = await read_body(request, MAX_JSON_BODY_BYTES)
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadMessage("body is not valid JSON", code="bad_json") from None
    if not isinstance(data, dict):
        raise BadMessage("body must be a JSON object")
    return data


def same_origin(conn: HTTPConnection, allowed: tuple[str, ...], public_url: str | None) -> bool:
    """True for requests with no Origin (non-browser clients), from this host, or from a listed origin."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    extra = set(allowed)
    if public_url:
        parts = urlsplit(public_url)
        extra.add(f"{parts.scheme}://{parts.netloc}")
    return origin in extra or urlsplit(origin).netloc == conn.headers.get("host")


def check_origin(conn: HTTPConnection, allowed: tuple[str, ...], public_url: str | None) -> None:
    """Refuse cross-site requests that would ride on a cookie (CSRF)."""
    if not same_origin(conn, allowed, public_url):
        raise Forbidden("cross-origin request refused", code="bad_origin")


# What makes a spreadsheet read a cell as a formula or a DDE command (OWASP "CSV injection"), with
# the full-width and small forms that East Asian spreadsheets also take for them.
FORMULA_STARTS = frozenset("=+-@|\t\r\n" + "\uff1d\uff0b\uff0d\uff20\uff5c" + "\ufe66\ufe62\ufe63\ufe6b")


def csv_cell(value: object) -> str:
    """A value for a CSV export that a spreadsheet never runs as a formula (CSV injection): one that
    starts with a formula character, also after spaces, is prefixed with an apostrophe."""
    text = "" if value is None else str(value)
    first = text.lstrip(" \u3000")[:1]
    return "'" + text if first and (first in FORMULA_STARTS or text[:1] in FORMULA_STARTS) else text


def bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_address(conn: HTTPConnection) -> str | None:
    """The client's address, as uvicorn reports it (the proxy's X-Forwarded-For when it trusts the proxy)."""
    return conn.client.host if conn.client is not None else None
