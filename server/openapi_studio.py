"""The studio's operations of the OpenAPI document (server/openapi.py adds them to the table of
server/openapi_paths.py): its pages and the JSON API of its rooms and presets."""

from __future__ import annotations

from server.i18n import LOCALES
from server.openapi_paths import (
    BOOL,
    HOST_OR_SESSION,
    INT,
    JSON_BODY,
    STR,
    VIEWER,
    VIEWER_OPTIONAL,
    Json,
    Operation,
    content,
    enum,
    form,
    html,
    json_in,
    json_out,
    obj,
    op,
    query,
    redirect,
    text,
)
from server.studio.sources import CHANNELS

STUDIO: list[Json] = [{"studioSession": []}]
TAG = "studio"
MS: Json = {"type": ["integer", "null"], "description": "epoch milliseconds"}
ROOM = obj(
    "id",
    "title",
    "status",
    "org_id",
    id=STR,
    title=STR,
    status=enum(["scheduled", "live", "ended"]),
    org_id=STR,
    scheduled_ms=MS,
    started_ms=MS,
    ended_ms=MS,
    created_ms=INT,
    description={"type": ["string", "null"]},
    cover={"type": ["string", "null"], "description": "the cover's path, /media/<name>.webp"},
    peak_viewers=INT,
    host_key_enabled=BOOL,
    cloned_from={"type": ["string", "null"]},
)
ROOM_FIELDS = json_in(obj(title=STR, scheduled_ms=MS, description=STR, org_id=STR))
PRESET = obj(
    "id",
    "kind",
    "label",
    "payload",
    id=INT,
    kind=enum(["discount", "draw"]),
    label=STR,
    payload={"type": "object", "description": "the data of discount.launch or draw.create"},
    created_ms=INT,
    launched_ms=MS,
)
KIND = enum(["discount", "draw"])
PRESET_IN = json_in(obj("label", "payload", kind=KIND, label=STR, payload={"type": "object"}))
PRESETS = json_out(obj("presets", presets={"type": "array", "items": PRESET}))
SOURCE = obj(
    "code",
    "label",
    "channel",
    "link",
    "qr",
    code=STR,
    label=STR,
    channel=enum(CHANNELS),
    link={**STR, "description": "the entry link, /r/{room}?src=CODE"},
    qr={**STR, "description": "its QR code (SVG)"},
    created_ms=INT,
    archived=BOOL,
)
SOURCES = json_out(
    obj(
        "sources",
        "channels",
        sources={"type": "array", "items": SOURCE},
        channels={"type": "array", "items": STR},
    )
)
SIGNIN = {**redirect("the studio's sign-in, with `next`, without a studio session"), **html("a link to it")}
IMAGE_IN: Json = {
    "content": {
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": obj("cover", cover={"type": "string", "format": "binary"})},
    }
}
LANG = query("lang", "the page's language, over the cookie and Accept-Language", enum(LOCALES))
WRITE = (*JSON_BODY, 401, 403, 404, 422)
AUDIT_FILTERS = [
    query("org", "an organisation id"),
    query("room", "a room id"),
    query("actor", "an account id, or 'host key' / 'cli'"),
    query("category", "a category"),
    query("action", "text the action contains"),
    query("from", "YYYY-MM-DD"),
    query("to", "YYYY-MM-DD (inclusive)"),
    query("tz", "the reader's offset east of UTC, in minutes"),
]

# fmt: off
OPERATIONS: list[Operation] = [
    op("GET /studio", "studioRooms", "The rooms list: tabs by status, a title search", TAG, STUDIO,
       {200: html("the page"), 303: SIGNIN}, pages=[422],
       params=[query("status", "scheduled, live or ended"), query("q", "text in the title"),
               query("page", "from 1"), LANG]),
    op("GET /studio/rooms/new", "studioNewRoomForm", "The new-room form", TAG, STUDIO,
       {200: html("the form"), 303: SIGNIN}, params=[LANG]),
    op("POST /studio/rooms/new", "studioNewRoom", "Create a room from the form", TAG, STUDIO,
       {303: redirect("the new room's page"), 200: html("the form again")}, pages=[403, 422],
       body=form(obj("title", title=STR, scheduled_ms=STR, description=STR, org_id=STR))),
    op("GET /studio/rooms/{room_id}", "studioRoom", "A room's page: schedule, links, presets, host key", TAG,
       STUDIO, {200: html("the page"), 303: SIGNIN}, pages=[404], params=[LANG]),
    op("GET /studio/rooms/{room_id}/poster.{fmt}", "studioPoster", "The room's QR code poster (A4)", TAG,
       STUDIO, {200: {"description": "PNG or PDF", "content": {
           "image/png": {"schema": STR}, "application/pdf": {"schema": STR}}}, 303: SIGNIN,
           503: content("text/plain", STR, "the poster took too long to draw")},
       pages=[404], params=[query("tz", "the reader's IANA time zone, for the start time"), LANG]),
    op("GET /api/studio/rooms", "studioListRooms", "A page of the rooms list", TAG, STUDIO,
       {200: json_out(obj("rooms", "total", "page", "pages", rooms={"type": "array", "items": ROOM},
                          total=INT, page=INT, pages=INT))}, [401, 422],
       params=[query("status", "scheduled, live or ended"), query("q", "text in the title"),
               query("page", "from 1")]),
    op("POST /api/studio/rooms", "studioCreateRoom", "Create a scheduled room (room:admin)", TAG, STUDIO,
       {201: json_out(ROOM, "created")}, WRITE, body=ROOM_FIELDS,
       note="`scheduled_ms` must be in the future; `description` at most 2,000 characters."),
    op("GET /api/studio/rooms/{room_id}", "studioGetRoom", "A room with its links and remind-me count", TAG,
       STUDIO, {200: json_out(obj(role=STR, links={"type": "object"}, reminders=INT))}, [401, 404]),
    op("PATCH /api/studio/rooms/{room_id}", "studioScheduleRoom", "Change title, start time, description",
       TAG, STUDIO, {200: json_out(ROOM)}, WRITE, body=ROOM_FIELDS),
    op("PUT /api/studio/rooms/{room_id}/cover", "studioCover", "Upload the cover image (room:admin)", TAG,
       STUDIO, {200: json_out(ROOM)}, [401, 403, 404, 413, 422, 429], body=IMAGE_IN,
       note="JPEG, PNG, WebP or GIF up to 8 MiB, stored re-encoded as WebP without its metadata."),
    op("DELETE /api/studio/rooms/{room_id}/cover", "studioRemoveCover", "Remove the cover image", TAG, STUDIO,
       {200: json_out(ROOM)}, [401, 403, 404]),
    op("POST /api/studio/rooms/{room_id}/clone", "studioCloneRoom", "A copy with products and presets",
       TAG, STUDIO, {201: json_out(ROOM, "the copy")}, [401, 403, 404]),
    op("POST /api/studio/rooms/{room_id}/host-key", "studioHostKey", "Allow or refuse host-key sign-in", TAG,
       STUDIO, {200: json_out(ROOM)}, WRITE, body=json_in(obj("enabled", enabled=BOOL)),
       note="Refusing closes the consoles opened with the key at once."),
    op("GET /api/studio/rooms/{room_id}/presets", "studioPresets", "The room's presets", TAG, STUDIO,
       {200: PRESETS}, [401, 404]),
    op("POST /api/studio/rooms/{room_id}/presets", "studioAddPreset", "Prepare a discount or a draw", TAG,
       STUDIO, {201: json_out(PRESET, "saved")}, [*WRITE, 409], body=PRESET_IN,
       note="Discounts need deals:run, draws draws:run; the payload is checked as its launch would be."),
    op("PUT /api/studio/rooms/{room_id}/presets/{preset_id}", "studioEditPreset", "Change a preset", TAG,
       STUDIO, {200: json_out(PRESET)}, WRITE, body=PRESET_IN),
    op("DELETE /api/studio/rooms/{room_id}/presets/{preset_id}", "studioDeletePreset", "Delete a preset", TAG,
       STUDIO, {200: json_out(obj("ok", ok=BOOL))}, [401, 403, 404, 422]),
    op("GET /api/studio/rooms/{room_id}/sources", "studioSources", "The room's sources (entry links)", TAG,
       STUDIO, {200: SOURCES}, [401, 403, 404], note="room:admin or followup:manage (docs/revenue.md)."),
    op("POST /api/studio/rooms/{room_id}/sources", "studioAddSource", "A new source: label and channel", TAG,
       STUDIO, {201: json_out(SOURCE, "made")}, [*WRITE, 409],
       body=json_in(obj("label", "channel", label=STR, channel=enum(CHANNELS)))),
    op("DELETE /api/studio/rooms/{room_id}/sources/{code}", "studioArchiveSource", "Archive a source", TAG,
       STUDIO, {200: json_out(SOURCE)}, [401, 403, 404],
       note="Its code stops counting; what it already brought keeps naming it."),
    op("GET /api/rooms/{room_id}/presets", "consolePresets", "The presets, for the console", "rooms",
       HOST_OR_SESSION, {200: PRESETS}, [401, 403, 404]),
    op("GET /media/{name}", "media", "A stored image (covers, product photos)", "pages", [],
       {200: {"description": "the image", "content": {"image/webp": {"schema": STR}}}}, [404]),
    # Go-live reminders (server/studio/reminders.py) and the audit log (server/studio/audit_http.py).
    op("GET /api/rooms/{room_id}/reminder", "reminderState", "Whether this phone asked to be reminded",
       "phone", VIEWER_OPTIONAL, {200: json_out(obj("set", "status", set=BOOL, status=STR, scheduled_ms=MS))},
       [404]),
    op("POST /api/rooms/{room_id}/reminder", "remindMe", "Remind me when this scheduled room goes live",
       "phone", VIEWER, {200: json_out(obj("ok", "set", "consented", ok=BOOL, set=BOOL,
                                           consented={"type": "array", "items": STR}))},
       [401, 403, 404, 409], note="Idempotent; 409 `not_scheduled` once the room is live or ended. "
       "`consented`: the channels the viewer granted (none: the reminder comes in the app)."),
    op("DELETE /api/rooms/{room_id}/reminder", "cancelReminder", "No reminder after all", "phone", VIEWER,
       {200: json_out(obj("ok", "set", ok=BOOL, set=BOOL))}, [401, 403, 404]),
    op("GET /studio/audit", "studioAudit", "The audit log of the organisations the reader owns", TAG, STUDIO,
       {200: html("the page"), 303: SIGNIN}, pages=[403],
       params=[*AUDIT_FILTERS, query("before", "entries older than this id"), LANG]),
    op("GET /studio/audit.csv", "studioAuditCsv", "The filtered audit log as CSV (org:admin)", TAG, STUDIO,
       {200: text("text/csv", "UTF-8 with BOM, newest first, an attachment")}, [401, 403],
       params=AUDIT_FILTERS),
]
# fmt: on
