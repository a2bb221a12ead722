"""The answer to an error nothing else handled: the documented JSON error body for API calls
(``{"error": {"code": "internal", ...}}``, 500), a plain page for browsers; never a traceback.

Starlette's outermost middleware calls this, then re-raises, so the traceback reaches the log
(uvicorn's "Exception in ASGI application") and only there. That middleware sits outside the
security headers', so the headers are added here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from server.headers import HeaderPolicy

INTERNAL_MESSAGE = "the server failed to answer this request; the fault is in its log"
# Static on purpose: rendering a template could be what failed. Both languages, no script.
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Something went wrong · 出错了</title><link rel="stylesheet" href="/static/css/base.css"></head>
<body><main class="page-center"><div class="card">
<h1>Something went wrong</h1><p>Please try again in a moment.</p>
<h1 lang="zh-CN">出错了</h1><p lang="zh-CN">请稍后再试。</p>
<p class="muted" data-error-code="internal">internal</p>
</div></main></body>
</html>
"""


def wants_json(request: Request) -> bool:
    """API paths, and clients that do not ask for HTML, get JSON."""
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "")


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    """500 with the documented body (or page), whatever ``exc`` was."""
    del exc  # logged by the server with its traceback; never shown
    response: Response
    if wants_json(request):
        response = JSONResponse({"error": {"code": "internal", "message": INTERNAL_MESSAGE}}, status_code=500)
    else:
        response = HTMLResponse(PAGE, status_code=500)
    response.headers["cache-control"] = "no-store"
    policy: HeaderPolicy | None = getattr(request.app.state, "header_policy", None)
    if policy is not None:
        for name, value in policy.for_request(request.scope):
            response.headers.setdefault(name, value)
    return response
