"""Server-rendered pages: a template rendered in the reader's language (the app keeps the templates,
``pages.make_templates``). Below the surfaces and the domains alike, so a domain's page (a draw's
verification page) needs no surface module."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from server.i18n import negotiate, template_helpers


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    ctx = template_helpers(negotiate(request))
    ctx.update(context)
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["cache-control"] = "no-store"
    return response
