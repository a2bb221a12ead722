"""The accounts domain's operations of the OpenAPI document (server/openapi.py adds them): signing in
to the studio, one-time links, password reset, sessions, and the team's JSON API (docs/accounts.md)."""

from __future__ import annotations

from server.i18n import LOCALES
from server.openapi_paths import (
    BOOL,
    JSON_BODY,
    STR,
    Json,
    Operation,
    enum,
    form,
    html,
    json_in,
    json_out,
    obj,
    op,
    query,
    redirect,
)

STUDIO: list[Json] = [{"studioSession": []}]
NONE: list[Json] = []
TAG = "studio accounts"
LANG = query("lang", "the page's language, over the cookie and Accept-Language", enum(LOCALES))
SIGNIN = {**redirect("the studio's sign-in, with `next`, without a studio session"), **html("a link to it")}
ROLE = enum(["owner", "host", "moderator", "seller", "marketer", "analyst"])
MEMBER = obj(
    "account_id",
    "email",
    "name",
    "role",
    "has_password",
    account_id=STR,
    email=STR,
    name=STR,
    role=ROLE,
    has_password=BOOL,
)
TEAM = obj(
    "org",
    "members",
    "rooms",
    "overrides",
    org=obj("id", "name", id=STR, name=STR),
    members={"type": "array", "items": MEMBER},
    rooms={"type": "array", "items": obj("id", "title", id=STR, title=STR)},
    overrides={
        "type": "array",
        "items": obj("room_id", "account_id", "role", room_id=STR, account_id=STR, role=ROLE),
    },
)
WRITE = (*JSON_BODY, 401, 403, 404, 422)
EMAIL_FORM = form(obj("email", email=STR))
PASSWORDS = form(obj("password", "password2", password=STR, password2=STR))
SESSION_PAGE = redirect("back to the sessions page (or to sign in, when it was this browser's)")

# fmt: off
OPERATIONS: list[Operation] = [
    op("GET /studio/signin", "studioSigninForm", "The sign-in form (a signed-in browser goes to `next`)", TAG,
       NONE, {200: html("the form"), 303: redirect("`next`, already signed in")},
       params=[query("next", "a path on this site to go to after"), LANG]),
    op("POST /studio/signin", "studioSignin", "Sign in with email and password", TAG, NONE,
       {303: redirect("`next` (a local path) or /studio; sets the lw_studio cookie")}, [403],
       pages=[401, 429],
       body=form(obj("email", "password", email=STR, password=STR, next=STR)),
       note="Throttled per address and per account; checked off the event loop."),
    op("POST /studio/signin/link", "studioSigninLink", "Mail a one-time sign-in link", TAG, NONE,
       {200: html("the same answer whether or not the address has an account")}, [403], body=EMAIL_FORM),
    op("GET /studio/link/{token}", "studioLinkConfirm", "A one-time link's page: a button, nothing used",
       TAG, NONE, {200: html("the confirm button")}, pages=[401]),
    op("POST /studio/link/{token}", "studioLinkSignin", "Use a one-time link and sign in", TAG, NONE,
       {303: redirect("/studio; sets the lw_studio cookie")}, [403], pages=[401],
       note="401: the link was used or has expired."),
    op("GET /studio/reset", "studioResetForm", "The form asking for a password reset link", TAG, NONE,
       {200: html("the form (or, without mail, whom to ask)")}, params=[LANG]),
    op("POST /studio/reset", "studioResetRequest", "Mail a password reset link", TAG, NONE,
       {200: html("the same answer whether or not the address has an account")}, [403], body=EMAIL_FORM),
    op("GET /studio/reset/{token}", "studioResetPage", "A reset link's new-password form", TAG, NONE,
       {200: html("the form")}, pages=[401]),
    op("POST /studio/reset/{token}", "studioReset", "Set the new password and sign in", TAG, NONE,
       {303: redirect("/studio; every other session of the account is signed out")}, [403], pages=[401, 422],
       body=PASSWORDS, note="401: the link was used or expired; 422: the form again (not the same twice, "
       "or too weak)."),
    op("POST /studio/signout", "studioSignout", "Sign this browser out", TAG, STUDIO,
       {303: redirect("the sign-in page; the cookie is cleared")}, [403]),
    op("GET /studio/sessions", "studioSessions", "Your sessions (an owner's: also their members')", TAG,
       STUDIO, {200: html("the page"), 303: SIGNIN}, params=[LANG]),
    op("POST /studio/sessions/others/revoke", "studioRevokeOthers", "Sign out every other session", TAG,
       STUDIO, {303: SESSION_PAGE}, [403]),
    op("POST /studio/sessions/{session_id}/revoke", "studioRevokeSession", "Sign out one session", TAG,
       STUDIO, {303: SESSION_PAGE}, [403, 404],
       note="Your own, or a member's of an organisation you own; its consoles close within a second."),
    op("GET /studio/team", "studioTeam", "The members of the organisations you own", TAG, STUDIO,
       {200: html("the page"), 303: SIGNIN}, pages=[403], params=[LANG]),
    op("GET /api/studio/orgs/{org_id}/members", "studioMembers", "Members, rooms and per-room roles", TAG,
       STUDIO, {200: json_out(TEAM)}, [401, 403, 404]),
    op("POST /api/studio/orgs/{org_id}/members", "studioAddMember", "Add a member by email (org:admin)", TAG,
       STUDIO, {201: json_out(obj("member", "created", "link", member=MEMBER, created=BOOL,
                                  link={"type": ["string", "null"]}), "added")}, [*WRITE, 409],
       body=json_in(obj("email", "role", email=STR, name=STR, role=ROLE)),
       note="A new account has no password: a one-time link to set it is mailed, or (mail off) answered "
       "in `link` for the owner to pass on."),
    op("PUT /api/studio/orgs/{org_id}/members/{account_id}", "studioMemberRole", "Change a member's role",
       TAG, STUDIO, {200: json_out(obj("account_id", "role", account_id=STR, old={"type": ["string", "null"]},
                                       role=ROLE))}, [*WRITE, 409], body=json_in(obj("role", role=ROLE)),
       note="409 `last_owner`: an organisation keeps at least one owner."),
    op("DELETE /api/studio/orgs/{org_id}/members/{account_id}", "studioRemoveMember", "Remove a member",
       TAG, STUDIO, {200: json_out(obj("removed", removed=STR))}, [401, 403, 404, 409]),
    op("PUT /api/studio/orgs/{org_id}/members/{account_id}/rooms/{room_id}", "studioRoomRole",
       "Set a member's role in one room", TAG, STUDIO,
       {200: json_out(obj("account_id", "room_id", account_id=STR, room_id=STR,
                          role={"type": ["string", "null"]}))}, WRITE,
       body=json_in(obj(role={"type": ["string", "null"], "description": "a role; null clears"}))),
    op("DELETE /api/studio/orgs/{org_id}/members/{account_id}/rooms/{room_id}", "studioClearRoomRole",
       "Clear a member's role in one room (the organisation role counts)", TAG, STUDIO,
       {200: json_out(obj("account_id", "room_id", account_id=STR, room_id=STR, role={"type": "null"}))},
       [401, 403, 404]),
]
# fmt: on

PATH_PARAMETERS: dict[str, Json] = {
    "session_id": {"in": "path", "required": True, "description": "a studio session's id", "schema": STR},
    "org_id": {"in": "path", "required": True, "description": "an organisation's id", "schema": STR},
    "account_id": {"in": "path", "required": True, "description": "an account's id", "schema": STR},
}
