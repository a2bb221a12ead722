"""The OpenAPI 3.1 document of every HTTP endpoint (GET /api/openapi.json) and the API's index (GET /api),
both built once from the operation table in server/openapi_paths.py."""

from __future__ import annotations

import functools
import html
import re

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from server import __version__
from server.followup import contacts, rules
from server.intents.wire import SHOP_EVENTS
from server.openapi_accounts import OPERATIONS as ACCOUNT_OPERATIONS
from server.openapi_accounts import PATH_PARAMETERS as ACCOUNT_PARAMETERS
from server.openapi_paths import (
    BOOL,
    ERROR_RESPONSES,
    INT,
    OPERATIONS,
    STR,
    Json,
    enum,
    obj,
    ref,
)
from server.openapi_studio import OPERATIONS as STUDIO_OPERATIONS

OPENAPI_PATH = "/api/openapi.json"
WEBSOCKET_PATH = "/ws/{role}/{room_id}"

DESCRIPTION = f"""Live-commerce interaction server: viewers' phones, the host console and the big screen.

JSON in, JSON out; bodies are limited to 64 KiB (413). Errors are `{{"error": {{"code", "message"}}}}`
with an HTTP status; the codes are listed in docs/protocol.md. Requests from a page of another site
that would ride on a cookie are refused (403 `bad_origin`).

Rooms live in real time over the WebSocket `{WEBSOCKET_PATH}` (role `viewer`, `host` or `screen`),
which is not an HTTP operation and so is not listed here: docs/protocol.md is its contract."""

NULL: Json = {"type": "null"}
MS: Json = {"type": "integer", "description": "epoch milliseconds"}


def _array(items: Json) -> Json:
    return {"type": "array", "items": items}


def _or_null(schema: Json) -> Json:
    return {"anyOf": [schema, NULL]}


def _read_only(schema: Json) -> Json:
    return {**schema, "readOnly": True}


PRODUCT = obj(
    "name",
    name=STR,
    price={"type": ["number", "string"], "description": "in major units (12.5); or price_minor"},
    price_minor=INT,
    currency=STR,
    stock=INT,
    sku=STR,
    image_url=STR,
    shop_url=STR,
    description=STR,
)

SCHEMAS: dict[str, Json] = {
    "Error": obj("error", error=obj("code", "message", code=STR, message=STR)),
    "Ready": obj("ready", "checks", ready=BOOL, checks={"type": "object", "additionalProperties": BOOL}),
    "ApiIndex": obj(
        "name",
        "version",
        "openapi",
        "endpoints",
        name=STR,
        version=STR,
        openapi=STR,
        websocket=STR,
        endpoints=_array(obj("method", "path", "summary", method=STR, path=STR, summary=STR)),
    ),
    "Room": obj(
        "id", "title", "status", "viewers", "peak", id=STR, title=STR, status=STR, viewers=INT, peak=INT
    ),
    "Joined": obj("room", "viewer_id", "name", "token", room=STR, viewer_id=STR, name=STR, token=STR),
    "Announcement": obj("id", "text", "created_ms", id=INT, text=STR, created_ms=MS),
    "RoomStatus": obj("status", status=STR),
    "Export": obj(
        "room",
        "items",
        "votes",
        "moderation",
        room=STR,
        items=_array({"type": "object"}),
        votes=_array(obj(item_id=INT, viewer_id=STR, created_ms=MS)),
        moderation=_array({"type": "object"}),
        count={"type": "object"},
    ),
    "ProductImport": {"oneOf": [_array(PRODUCT), obj("products", products=_array(PRODUCT))]},
    "ImportResult": obj("added", "updated", added=INT, updated=INT),
    "ShopEvent": obj(
        "type",
        type=enum(SHOP_EVENTS),
        data=obj(order_id=STR, coupon_code=STR, viewer_id=STR, sku=STR),
    ),
    "ShopAnswer": obj("ok", "duplicate", "type", ok=BOOL, duplicate=BOOL, type=STR, late=BOOL),
    "DrawRecord": obj(
        "algorithm", "draw", "status", algorithm=STR, draw=STR, title=STR, mode=STR, status=STR
    ),
    "Contact": _or_null(
        obj(
            email=_or_null(STR),
            phone=_or_null(STR),
            tz=_or_null(STR),
            consent={"type": "object", "additionalProperties": STR},
            push=BOOL,
        )
    ),
    "OptIn": obj(
        "wording",
        email=STR,
        phone=STR,
        name=STR,
        tz=STR,
        lang=enum(contacts.LOCALES),
        consent=obj(email=BOOL, sms=BOOL),
        wording={**STR, "description": "the consent sentence as shown"},
    ),
    "OptInAnswer": obj(
        "ok",
        "contact",
        "pending",
        "confirmation_sent",
        ok=BOOL,
        contact=ref("Contact"),
        pending=_array(STR),
        confirmation_sent=BOOL,
    ),
    "PushRequest": obj(
        "subscription",
        subscription=obj("endpoint", "keys", endpoint=STR, keys=obj("p256dh", "auth", p256dh=STR, auth=STR)),
        wording=STR,
        lang=enum(contacts.LOCALES),
        tz=STR,
    ),
    "SmsReceipt": obj("id", "status", id=STR, status=enum(["delivered", "failed"]), reason=STR),
    "FollowupSettings": obj(
        quiet_start={**STR, "description": "HH:MM"},
        quiet_end={**STR, "description": "HH:MM"},
        cap_per_day={"type": "integer", "minimum": 0, "maximum": 100},
        cap_per_week={"type": "integer", "minimum": 0, "maximum": 100},
        failure_pause_ratio={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        webhook_url=_or_null(STR),
        utm={**BOOL, "description": "UTM parameters on tracked links (docs/revenue.md); default true"},
        utm_source=_or_null({**STR, "description": "utm_source; null: livewall"}),
    ),
    "Journey": obj(
        "key",
        "name",
        "entry",
        "steps",
        id=_read_only(INT),
        status=_read_only(STR),
        paused_reason=_read_only(_or_null(STR)),
        key=STR,
        name=STR,
        entry=enum(rules.EVENT_KINDS),
        goal=_or_null(enum(rules.EVENT_KINDS)),
        key_by=_or_null(enum(rules.KEY_BY)),
        conditions={"type": "object"},
        steps=_array({"type": "object", "description": "{wait: ...} or {send: ...} (docs/followup.md)"}),
        while_paused={
            **enum(rules.WHILE_PAUSED),
            "description": "entries arriving while paused: held for the resume, or skipped",
        },
        paused_entries=_read_only(
            {"type": "object", "description": "held, entered, goal, skipped counts; skipped_recent"}
        ),
    ),
    "TemplateText": obj("body", subject=_or_null(STR), body=STR),
    "Template": obj(
        "key",
        "locale",
        "body",
        id=_read_only(INT),
        key=STR,
        channel=enum([*rules.CHANNELS, "*"]),
        locale=enum(contacts.LOCALES),
        subject=_or_null(STR),
        body=STR,
    ),
    "Campaign": obj(
        "name",
        "segment",
        "channel",
        "template",
        name=STR,
        segment=enum(rules.SEGMENTS),
        channel=enum([*rules.CHANNELS, "auto"]),
        template=STR,
        send_ms=MS,
    ),
    "Scheduled": obj("id", "status", "send_ms", id=INT, status=STR, send_ms=MS),
    "Rendered": obj("subject", "text", subject=_or_null(STR), text=STR),
    "Message": obj("id", "channel", "status", id=INT, channel=STR, status=STR, reason=_or_null(STR)),
    "FollowupOverview": obj(
        settings=ref("FollowupSettings"),
        journeys=_array(ref("Journey")),
        templates=_array(ref("Template")),
        funnel={"type": "object"},
        segments={"type": "object", "additionalProperties": INT},
        channels=_array(STR),
        events=_array(STR),
        webhook_secret=STR,
        campaigns=_array({"type": "object"}),
        dead=INT,
        alerts=_array({"type": "object"}),
    ),
    "DoNotContact": obj(
        "reason", email=STR, phone=STR, channel=enum([*contacts.CONSENT_CHANNELS, "all"]), reason=STR
    ),
    "DoNotContactAnswer": obj("ok", "contacts", "channels", ok=BOOL, contacts=INT, channels=_array(STR)),
}

ERROR_MEANINGS = {
    400: "a body that is not a JSON object (`bad_json`, `bad_message`)",
    401: "no credentials, or forged or expired ones (`unauthorized`, `bad_key`, `bad_signature`, ...)",
    403: "a cross-site request riding on a cookie (`bad_origin`)",
    404: "no such room or object (`not_found`)",
    409: "the action does not fit the current state (`conflict`, `bad_state`)",
    413: "a body over the size limit (`too_large`)",
    422: "well-formed but not acceptable content (`invalid` and the codes it names)",
    429: "too many tries: `too_many_attempts` (wrong host keys); `Retry-After` says when to try again",
}
RESPONSES: dict[str, Json] = {
    **{
        name: {
            "description": ERROR_MEANINGS[status],
            "content": {"application/json": {"schema": ref("Error")}},
        }
        for status, name in ERROR_RESPONSES.items()
    },
    "ErrorPage": {
        "description": "an HTML page showing the error's code and message",
        "content": {"text/html": {"schema": STR}},
    },
    "ErrorText": {
        "description": "the error's message as plain text",
        "content": {"text/plain": {"schema": STR}},
    },
}


def _path_param(description: str, schema: Json = STR) -> Json:
    return {"in": "path", "required": True, "description": description, "schema": schema}


PATH_PARAMETERS: dict[str, Json] = {
    "room_id": _path_param("the room's id"),
    "product_id": _path_param("the product's id or SKU"),
    "code": _path_param("the draw's public code"),
    "token": _path_param("the signed token of a link in a message"),
    "message_id": _path_param("the message's id", {"type": "string", "pattern": "^[0-9]{1,12}$"}),
    "campaign_id": _path_param("the campaign's id", {"type": "string", "pattern": "^[0-9]{1,12}$"}),
    "key": _path_param("the journey's key"),
    "fmt": _path_param("the export's format, or the poster's", enum(["json", "csv", "png", "pdf"])),
    "preset_id": _path_param("the preset's id", {"type": "string", "pattern": "^[0-9]{1,18}$"}),
    "name": _path_param("a stored image's name", {"type": "string", "pattern": "^[0-9a-f]{32}[.]\\w+$"}),
}

SECURITY_SCHEMES: dict[str, Json] = {
    "hostBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <host token>` from POST /api/rooms/{room_id}/host-token",
    },
    "hostSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "lw_host_{room_id}",
        "description": "the host console's session cookie (one per room, SameSite=Strict) from POST "
        "/host/{room_id}/login; cross-site requests riding on it are refused (403 `bad_origin`)",
    },
    "viewerCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "lw_viewer",
        "description": "the viewer's cookie from POST /api/rooms/{room_id}/join (same-origin requests)",
    },
    "shopSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "a Standard Webhooks signature with the room's `whsec_` secret, over "
        "`webhook-id`, `webhook-timestamp` and the body (docs/shop-webhooks.md)",
    },
    "smsGateway": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <LIVEWALL_SMS_TOKEN>`: the SMS gateway calling back",
    },
    "studioSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "lw_studio",
        "description": "the studio's session cookie (SameSite=Lax) from signing in at /studio/signin; "
        "changing requests from other sites are refused (403 `bad_origin`)",
    },
    "screenLink": {
        "type": "apiKey",
        "in": "query",
        "name": "k",
        "description": "the big screen's secret read-only link key (`/screen/{room_id}?k=...`)",
    },
}


@functools.cache
def document() -> Json:
    """The OpenAPI document, built once."""
    paths: dict[str, Json] = {}
    for method, path, operation in [*OPERATIONS, *STUDIO_OPERATIONS, *ACCOUNT_OPERATIONS]:
        item = paths.setdefault(path, {})
        names = re.findall(r"{(\w+)}", path)
        if names and "parameters" not in item:
            item["parameters"] = [{"$ref": f"#/components/parameters/{name}"} for name in names]
        item[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Livewall",
            "version": __version__,
            "description": DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "parameters": {
                name: {"name": name, **p} for name, p in {**PATH_PARAMETERS, **ACCOUNT_PARAMETERS}.items()
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@functools.cache
def _document_bytes() -> bytes:
    return orjson.dumps(document())


@functools.cache
def index() -> Json:
    """The API's index: what answers /api, drawn from the OpenAPI document."""
    doc = document()
    return {
        "name": doc["info"]["title"],
        "version": doc["info"]["version"],
        "openapi": OPENAPI_PATH,
        "websocket": WEBSOCKET_PATH,
        "endpoints": [
            {"method": method.upper(), "path": path, "summary": operation["summary"]}
            for path, item in doc["paths"].items()
            for method, operation in item.items()
            if method != "parameters"
        ],
    }


def _quality(accept: str, media: str) -> float:
    """The q the Accept header gives ``media`` (its most specific match), 0 when it does not accept it."""
    kind = media.split("/")[0]
    best, q = -1, 0.0
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        rank = {media: 2, f"{kind}/*": 1, "*/*": 0}.get(fields[0].lower(), -1)
        if rank > best:
            best, q = rank, 1.0
            for f in fields[1:]:
                if f.startswith("q="):
                    try:
                        q = float(f[2:])
                    except ValueError:
                        q = 0.0
    return q


def prefers_html(request: Request) -> bool:
    """True when the Accept header ranks text/html above JSON (a browser following the link)."""
    accept = request.headers.get("accept", "")
    return _quality(accept, "text/html") > _quality(accept, "application/json")


@functools.cache
def _index_page() -> str:
    data = index()
    rows = "\n".join(
        f"<tr><td>{html.escape(e['method'])}</td><td><code>{html.escape(e['path'])}</code></td>"
        f"<td>{html.escape(e['summary'])}</td></tr>"
        for e in data["endpoints"]
    )
    title = html.escape(f"{data['name']} {data['version']} HTTP API")
    return (
        f'<!doctype html>\n<html lang="en"><meta charset="utf-8"><title>{title}</title>\n'
        f'<h1>{title}</h1>\n<p><a href="{OPENAPI_PATH}">OpenAPI 3.1 document</a></p>\n'
        f"<table>\n<tr><th>method</th><th>path</th><th>summary</th></tr>\n{rows}\n</table>\n</html>\n"
    )


@functools.cache
def _index_bytes() -> bytes:
    return orjson.dumps(index())


async def api_index(request: Request) -> Response:
    """GET /api: the index as JSON, or as a small HTML page for a browser."""
    # The answer depends on Accept: caches must keep one per representation.
    headers = {"vary": "accept"}
    if prefers_html(request):
        return HTMLResponse(_index_page(), headers=headers)
    return Response(_index_bytes(), media_type="application/json", headers=headers)


async def openapi_json(_request: Request) -> Response:
    """GET /api/openapi.json: the OpenAPI document."""
    return Response(_document_bytes(), media_type="application/json")


routes = [
    Route("/api", api_index, methods=["GET"]),
    Route(OPENAPI_PATH, openapi_json, methods=["GET"]),
]
