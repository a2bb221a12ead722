"""The operations of the OpenAPI document, one row per HTTP route and method: docs/api.md in machine
form. server/openapi.py adds the shared components (schemas, errors, security) and path parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.followup import contacts, rules

Json = dict[str, Any]
Operation = tuple[str, str, Json]  # (method, path, the operation object)

# Error statuses answered with the JSON error body, by the shared response that describes each.
ERROR_RESPONSES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "TooLarge",
    422: "Invalid",
    429: "TooManyRequests",
}

# Security requirements: alternatives, any one suffices; `{}` among them makes the credential optional.
NONE: list[Json] = []
HOST: list[Json] = [{"hostBearer": []}]
HOST_OR_SESSION: list[Json] = [{"hostBearer": []}, {"hostSession": []}]
SESSION_OPTIONAL: list[Json] = [{"hostSession": []}, {}]
VIEWER: list[Json] = [{"viewerCookie": []}]
VIEWER_OPTIONAL: list[Json] = [{"viewerCookie": []}, {}]
SHOP: list[Json] = [{"shopSignature": []}]
SMS: list[Json] = [{"smsGateway": []}]
SCREEN: list[Json] = [{"screenLink": []}]

STR: Json = {"type": "string"}
INT: Json = {"type": "integer"}
BOOL: Json = {"type": "boolean"}


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(*required: str, **props: Json) -> Json:
    """An object schema with these properties; the names given positionally are required."""
    schema: Json = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return schema


def enum(values: Iterable[str]) -> Json:
    return {"type": "string", "enum": list(values)}


def content(media: str, schema: Json | str, description: str = "OK") -> Json:
    """A response of one media type; a str names a component schema."""
    return {"description": description, "content": {media: {"schema": _schema(schema)}}}


def json_out(schema: Json | str, description: str = "OK") -> Json:
    return content("application/json", schema, description)


def json_in(schema: Json | str) -> Json:
    """A JSON request body; a str names a component schema."""
    return {"content": {"application/json": {"schema": _schema(schema)}}}


def _schema(schema: Json | str) -> Json:
    return ref(schema) if isinstance(schema, str) else schema


def html(description: str) -> Json:
    return content("text/html", STR, description)


def text(media: str, description: str) -> Json:
    return content(media, STR, description)


def redirect(description: str) -> Json:
    return {"description": description, "headers": {"Location": {"schema": STR}}}


def form(schema: Json, *, required: bool = True) -> Json:
    return {"required": required, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def query(name: str, description: str, schema: Json = STR) -> Json:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def header(name: str, description: str) -> Json:
    return {"name": name, "in": "header", "required": True, "description": description, "schema": STR}


def op(
    route: str,
    op_id: str,
    summary: str,
    tag: str,
    security: list[Json],
    answers: dict[int, Json | str],
    errors: Iterable[int] = (),
    *,
    pages: Iterable[int] = (),
    body: Json | str | None = None,
    optional_body: bool = False,
    params: Iterable[Json] = (),
    note: str | None = None,
) -> Operation:
    """One operation of ``route`` ("METHOD /path"). A str answer or body names a JSON schema;
    ``errors`` answer the JSON error body, ``pages`` an HTML error page."""
    method, _, path = route.partition(" ")
    responses = {str(s): json_out(a) if isinstance(a, str) else a for s, a in answers.items()}
    responses.update({str(s): {"$ref": f"#/components/responses/{ERROR_RESPONSES[s]}"} for s in errors})
    responses.update({str(s): {"$ref": "#/components/responses/ErrorPage"} for s in pages})
    out: Json = {"operationId": op_id, "summary": summary, "tags": [tag], "security": security}
    if note:
        out["description"] = note
    if params:
        out["parameters"] = list(params)
    if isinstance(body, str):
        body = json_in(body)
    if body is not None:
        out["requestBody"] = {"required": not optional_body, **body}
    out["responses"] = dict(sorted(responses.items()))
    return method.lower(), path, out


LANG = query("lang", "the page's language, over the cookie and Accept-Language", enum(contacts.LOCALES))
SRC = query("src", "a source code of the room (docs/revenue.md); an unknown one is ignored")
JSON_BODY = (400, 413)  # a body that is not a JSON object (bad_json); one over 64 KiB
HOST_ERRORS = (401, 404)  # no or a wrong host token; no such room
CONSOLE = (*HOST_ERRORS, 403)  # and 403 bad_origin for a cross-site request riding on the session
PHONE = (*JSON_BODY, 401, 403, 404, 422)  # a viewer who has not joined the room (401), cross-site (403)
OK = obj("ok", ok=BOOL)
ID_STATUS = obj("id", "status", id=INT, status=STR)
CONSOLE_TAG, PHONE_TAG, LINK_TAG, SMS_TAG = "follow-up console", "follow-up viewers", "recipients", "sms"

# The formatter would put every argument on its own line: a dozen lines per row instead of a table.
# fmt: off
OPERATIONS: list[Operation] = [
    op("GET /healthz", "healthz", "Liveness: the process answers", "operations", NONE,
       {200: text("text/plain", "`ok`")}),
    op("GET /readyz", "readyz", "Readiness: the database and the hub backend answer", "operations", NONE,
       {200: json_out("Ready", "ready"), 503: json_out("Ready", "not ready")}),
    op("GET /metrics", "metrics", "Prometheus metrics (docs/api.md lists them)", "operations", NONE,
       {200: text("text/plain", "the Prometheus text format")}),
    op("GET /api", "apiIndex", "This API's index: service, version, the OpenAPI link, every endpoint", "meta",
       NONE, {200: {"description": "JSON; a small HTML page when Accept prefers text/html", "content": {
           "application/json": {"schema": ref("ApiIndex")}, "text/html": {"schema": STR}}}}),
    op("GET /api/openapi.json", "openapi", "This OpenAPI 3.1 document", "meta", NONE,
       {200: json_out({"type": "object"}, "the document")}),
    op("GET /api/rooms/{room_id}", "roomInfo", "Public facts about a room", "rooms", NONE,
       {200: "Room"}, [404]),
    op("POST /api/rooms/{room_id}/join", "join", "Become (or stay) a viewer of a room", "rooms",
       VIEWER_OPTIONAL, {200: "Joined"}, [*JSON_BODY, 401, 403, 404, 422],
       body=json_in(obj(name=STR, token=STR, lang=enum(contacts.LOCALES), src=STR)), optional_body=True,
       note="An existing `lw_viewer` cookie or `token` keeps the identity; answers with the cookie set. "
       "401 for a forged or expired `token`."),
    op("POST /api/rooms/{room_id}/host-token", "hostToken", "Exchange the host key for a host token", "rooms",
       NONE, {200: json_out(obj("token", token=STR))}, [*JSON_BODY, 401, 404, 429],
       body=json_in(obj("key", key=STR)), note="The key is the credential (401 `bad_key`). Wrong keys "
       "from one address or for one room lock further tries for a growing time: 429 `too_many_attempts` "
       "with `Retry-After` (docs/api.md)."),
    op("POST /api/rooms/{room_id}/host-key/rotate", "rotateHostKey", "Replace the host key", "rooms",
       HOST_OR_SESSION, {200: json_out(obj("key", "token", key=STR, token=STR))}, CONSOLE,
       note="The new key is shown only in this answer. Every host session of the old key is logged out "
       "(401 `revoked`, open consoles closed); the caller gets `token`, a session of the new key (and the "
       "session cookie, when it called with one)."),
    op("POST /api/rooms/{room_id}/screen-link/rotate", "rotateScreenLink", "Replace the big-screen link",
       "rooms", HOST_OR_SESSION, {200: json_out(obj("key", "link", key=STR, link=STR))}, CONSOLE,
       note="The old link stops working (401 `revoked`; open screens on it are closed). `link` is the "
       "new path, `/screen/{room}?k=KEY`."),
    op("POST /api/rooms/{room_id}/logout", "logoutApi", "Revoke the host token presented", "rooms",
       HOST_OR_SESSION, {200: json_out(OK)}, [*JSON_BODY, *CONSOLE, 422],
       body=json_in(obj(everywhere=BOOL)), optional_body=True,
       note="The token (or session) is refused from now on (401 `revoked`) and its live connections are "
       "closed. With `everywhere: true`, every host session of the room; the key stays the same."),
    op("POST /api/rooms/{room_id}/announcements", "announce", "Post an announcement", "rooms",
       HOST, {201: json_out("Announcement", "posted")}, [*JSON_BODY, *HOST_ERRORS, 422],
       body=json_in(obj("text", text=STR))),
    op("POST /api/rooms/{room_id}/start", "start", "Go live", "rooms", HOST, {200: "RoomStatus"},
       [*HOST_ERRORS, 409], note="409 `bad_state` if the room is already live."),
    op("POST /api/rooms/{room_id}/end", "end", "End the live session", "rooms", HOST, {200: "RoomStatus"},
       [*HOST_ERRORS, 409], note="409 `bad_state` if the room is not live."),
    op("GET /api/rooms/{room_id}/export.{fmt}", "export", "Every item, vote, answer and moderation action",
       "rooms", HOST_OR_SESSION, {200: {"description": "as JSON, or as CSV (UTF-8 with BOM)", "content": {
           "application/json": {"schema": ref("Export")}, "text/csv": {"schema": STR}}}}, HOST_ERRORS),
    op("POST /api/rooms/{room_id}/products/import", "importProducts", "Import products (all or nothing)",
       "selling", HOST_OR_SESSION, {200: "ImportResult"}, [400, 401, 403, 404, 409, 413, 422],
       body={"content": {"text/csv": {"schema": STR}, "application/json": {"schema": ref("ProductImport")}}},
       note="CSV with a header row (`name`, `price` or `price_minor`, `currency`, `stock`, `sku`, "
       "`image_url`, `shop_url`, `description`) or JSON; at most 500 products and 512 KiB. A product "
       "whose `sku` is on the shelf is updated. One bad row answers 422 naming it; 409 when the room "
       "would hold too many."),
    op("POST /api/rooms/{room_id}/shop/events", "shopEvent", "One signed shop event", "selling", SHOP,
       {200: "ShopAnswer"}, [*JSON_BODY, 401, 404, 422], body="ShopEvent",
       params=[header("webhook-id", "the event's id (at most 64 characters); retries reuse it"),
               header("webhook-timestamp", "Unix seconds when it was sent")],
       note="Standard Webhooks; a duplicate `webhook-id` answers 200 and changes nothing "
       "(docs/shop-webhooks.md). 401 `bad_signature`."),
    op("GET /r/{room_id}/buy/{product_id}", "buy", "Record a buy click, then go to the shop", "selling",
       VIEWER_OPTIONAL, {303: redirect("the shop link, with `coupon` and `lw_ref` for a known viewer")},
       [404, 409], note="409 if the product has no shop link."),
    op("GET /d/{code}", "drawPage", "A draw's public verification page", "draws", NONE,
       {200: html("the page")}, [404], params=[LANG]),
    op("GET /d/{code}/record.json", "drawRecord", "A draw's record (verify-draw)", "draws", NONE,
       {200: "DrawRecord"}, [404]),
    op("GET /api/rooms/{room_id}/draws.csv", "drawsCsv", "Every winner of every draw, with claims", "draws",
       HOST_OR_SESSION, {200: text("text/csv", "UTF-8 with BOM")}, HOST_ERRORS),
    op("POST /api/rooms/{room_id}/contact", "optIn", "The phone's opt-in box: contact and consent", PHONE_TAG,
       VIEWER, {200: "OptInAnswer"}, PHONE, body="OptIn"),
    op("POST /api/rooms/{room_id}/push", "pushSubscribe", "A browser's push subscription", PHONE_TAG,
       VIEWER, {200: json_out(obj("ok", "contact", ok=BOOL, contact=ref("Contact")))},
       PHONE, body="PushRequest", note="422 unless the endpoint is a browser push service's (https)."),
    op("GET /api/push/key", "pushKey", "The VAPID public key (base64url) to subscribe with", PHONE_TAG, NONE,
       {200: json_out(obj("key", key=STR))}),
    op("POST /api/inbox/{message_id}/opened", "inboxOpened", "The viewer read an in-app message", PHONE_TAG,
       VIEWER, {200: json_out(OK)}, [401, 403, 404]),
    op("GET /t/o/{token}", "openPixel", "The open pixel of an HTML email", LINK_TAG, NONE,
       {200: text("image/gif", "a 1x1 GIF, also for a link that is not valid")}),
    op("GET /t/{token}", "trackedLink", "Count a click, then go to the signed target", LINK_TAG, NONE,
       {302: redirect("the target")}, [404], note="Prefetches do not count."),
    op("GET /u/{token}", "unsubscribeAsk", "Unsubscribe: a button (link scanners change nothing)", LINK_TAG,
       NONE, {200: html("the page")}, [404]),
    op("POST /u/{token}", "unsubscribe", "Unsubscribe from one channel (RFC 8058 one-click too)", LINK_TAG,
       NONE, {200: html("done")}, [404], body=form(obj(**{"List-Unsubscribe": enum(["One-Click"])})),
       optional_body=True),
    op("GET /optin/{token}", "confirmAsk", "Double opt-in: a Confirm button", LINK_TAG, NONE,
       {200: html("the page")}, [404]),
    op("POST /optin/{token}", "confirm", "Confirm the address: grants email consent", LINK_TAG, NONE,
       {200: html("confirmed (or blocked by an earlier do-not-contact)")}, [404]),
    op("POST /api/sms/inbound", "smsInbound", "The SMS gateway's inbound replies (STOP, TD, 退订)", SMS_TAG,
       SMS, {200: json_out(obj("ok", "stop", ok=BOOL, stop=BOOL, contacts=INT))},
       [*JSON_BODY, 401, 422], body=json_in(obj("from", "text", text=STR, **{"from": STR}))),
    op("POST /api/sms/receipts", "smsReceipt", "The SMS gateway's delivery reports", SMS_TAG, SMS,
       {200: json_out(obj("ok", "status", ok=BOOL, status=STR))},
       [*JSON_BODY, 401, 404, 422], body="SmsReceipt"),
    op("GET /api/rooms/{room_id}/followup", "followupOverview", "Everything the Follow-up tab shows",
       CONSOLE_TAG, HOST_OR_SESSION, {200: "FollowupOverview"}, CONSOLE),
    op("PUT /api/rooms/{room_id}/followup/settings", "followupSettings", "Quiet hours, caps, webhook",
       CONSOLE_TAG, HOST_OR_SESSION, {200: "FollowupSettings"}, [*JSON_BODY, *CONSOLE, 422],
       body="FollowupSettings"),
    op("POST /api/rooms/{room_id}/followup/journeys", "saveJourney", "Create or replace a journey (by key)",
       CONSOLE_TAG, HOST_OR_SESSION, {200: "Journey"}, [*JSON_BODY, *CONSOLE, 422], body="Journey"),
    op("POST /api/rooms/{room_id}/followup/journeys/{key}/status", "journeyStatus",
       "Pause or resume; what entries do while paused", CONSOLE_TAG, HOST_OR_SESSION, {200: "Journey"},
       [*JSON_BODY, *CONSOLE, 422],
       body=json_in(obj(status=enum(["active", "paused"]), while_paused=enum(rules.WHILE_PAUSED))),
       note="At least one of the two; resuming lets the entries it held go in."),
    op("POST /api/rooms/{room_id}/followup/templates", "saveTemplate", "Create or replace a template",
       CONSOLE_TAG, HOST_OR_SESSION, {200: "Template"}, [*JSON_BODY, *CONSOLE, 422], body="Template",
       note="422 `bad_template` for a template that does not compile."),
    op("POST /api/rooms/{room_id}/followup/preview", "previewTemplate", "Render a template with sample data",
       CONSOLE_TAG, HOST_OR_SESSION, {200: "Rendered"},
       [*JSON_BODY, *CONSOLE, 422], body="TemplateText", note="Strict: an unknown variable is bad_template."),
    op("POST /api/rooms/{room_id}/followup/campaigns", "createCampaign", "Schedule a campaign to a segment",
       CONSOLE_TAG, HOST_OR_SESSION, {200: "Scheduled"},
       [*JSON_BODY, *CONSOLE, 422], body="Campaign"),
    op("POST /api/rooms/{room_id}/followup/campaigns/{campaign_id}/cancel", "cancelCampaign",
       "Cancel what a campaign has not yet handed to a provider", CONSOLE_TAG, HOST_OR_SESSION,
       {200: json_out(ID_STATUS)}, [*CONSOLE, 409], note="409 if it is done or cancelled."),
    op("GET /api/rooms/{room_id}/followup/messages", "messages", "The 100 latest messages, status and reason",
       CONSOLE_TAG, HOST_OR_SESSION, {200: json_out(obj("messages", messages={
           "type": "array", "items": ref("Message")}))}, CONSOLE,
       params=[query("status", "only the messages in this status (`dead`, `failed`, ...)")]),
    op("POST /api/rooms/{room_id}/followup/messages/{message_id}/retry", "retryMessage",
       "Send a dead or failed message again", CONSOLE_TAG, HOST_OR_SESSION,
       {200: json_out(ID_STATUS)}, [*CONSOLE, 409], note="409 unless it is dead or failed."),
    op("POST /api/rooms/{room_id}/followup/dnc", "doNotContact", "Do not contact a person on a channel",
       CONSOLE_TAG, HOST_OR_SESSION, {200: "DoNotContactAnswer"}, [*JSON_BODY, *CONSOLE, 422],
       body="DoNotContact", note="Recorded in the consent history; 404 when no contact has the address."),
    op("GET /", "home", "The home page", "pages", NONE, {200: html("the page")}, params=[LANG]),
    op("GET /r/{room_id}", "viewerPage", "The viewer's phone page (the QR code points here)", "pages",
       VIEWER_OPTIONAL, {200: html("the page")}, pages=[404], params=[LANG, SRC]),
    op("GET /r/{room_id}/qr.svg", "qrCode", "The QR code of the viewer page", "pages", NONE,
       {200: text("image/svg+xml", "SVG"), 404: {"$ref": "#/components/responses/ErrorText"}}, params=[SRC]),
    op("GET /sw.js", "serviceWorker", "The phone's push service worker (scope /)", "pages", NONE,
       {200: text("text/javascript", "the script")}),
    op("GET /screen/{room_id}", "screenPage", "The big screen, read-only (its secret link)", "pages", SCREEN,
       {200: html("the page")}, pages=[401, 404], params=[LANG]),
    op("GET /host/{room_id}", "consolePage", "The host console", "pages", SESSION_OPTIONAL,
       {200: html("the console"), 303: redirect("the login, without a host session")}, pages=[404],
       params=[LANG]),
    op("GET /host/{room_id}/login", "loginPage", "The host login form (`#key=` fills it in)", "pages",
       NONE, {200: html("the form")}, pages=[404], params=[LANG]),
    op("POST /host/{room_id}/login", "login", "Check the host key and start a host session", "pages", NONE,
       {303: redirect("the console, with the session cookie set")}, pages=[401, 403, 404, 429],
       body=form(obj("key", key=STR)), params=[LANG],
       note="401 shows the form again; 429 (with `Retry-After`) too, while wrong keys lock the address or "
       "the room."),
    op("POST /host/{room_id}/logout", "logout", "End the host session (its token is revoked)", "pages",
       SESSION_OPTIONAL, {303: redirect("the login, the session cookie deleted")}, [403]),
]
# fmt: on
