"""The team page (GET /studio/team) and its JSON API (/api/studio/orgs/{org}/members...): members,
their roles, and per-room overrides. Everything needs ORG_ADMIN in the organisation (an owner)."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from server.accounts import identity, team
from server.accounts.http import base_of, page_user
from server.accounts.identity import StudioUser
from server.auth import MEMBER_SCOPES, MemberRole, Scope
from server.httputil import check_origin, json_body
from server.services import Services
from server.storage.accounts import Organisation
from server.templating import render


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _member_shape(m: team.MemberView) -> dict[str, Any]:
    return {
        "account_id": m.account_id,
        "email": m.email,
        "name": m.name,
        "role": m.role,
        "has_password": m.has_password,
    }


def team_shape(found: team.Team) -> dict[str, Any]:
    return {
        "org": {"id": found.org.id, "name": found.org.name},
        "members": [_member_shape(m) for m in found.members],
        "rooms": [{"id": rid, "title": title} for rid, title in found.rooms],
        "overrides": [{"room_id": r, "account_id": a, "role": role} for r, a, role in found.overrides],
    }


async def _admin(request: Request, *, write: bool) -> tuple[Services, StudioUser, str]:
    """The signed-in owner of the path's organisation (401 signed out, 403 not an owner there)."""
    services = _services(request)
    if write:
        check_origin(request, services.settings.allowed_origins, services.settings.public_url)
    user = await identity.studio_user(services, request)
    org_id = request.path_params["org_id"]
    identity.require_org(user, org_id, Scope.ORG_ADMIN)
    return services, user, org_id


async def team_page(request: Request) -> Response:
    """GET: the members of every organisation this person administers; 403 when none."""
    user = await page_user(request)
    if not isinstance(user, StudioUser):
        return user
    services = _services(request)
    if user.account.admin:
        async with services.db.session() as session:
            org_ids = sorted(
                (await session.exec(select(Organisation.id).order_by(col(Organisation.id)))).all()
            )
    else:
        org_ids = sorted(org for org, role in user.roles.items() if Scope.ORG_ADMIN in MEMBER_SCOPES[role])
    teams = [await team.team_of(services.db, org) for org in org_ids]
    return render(
        request,
        "studio/team.html",
        status_code=200 if teams else 403,
        user=user,
        teams=teams,
        roles=[r.value for r in MemberRole],
        me=user.id,
    )


async def members(request: Request) -> Response:
    """GET the organisation's members, rooms and overrides; POST {email, name?, role} adds one."""
    services, user, org_id = await _admin(request, write=request.method == "POST")
    if request.method == "GET":
        return JSONResponse(team_shape(await team.team_of(services.db, org_id)))
    body = await json_body(request)
    added = await team.do_add_member(
        services, user, org_id, body.get("email"), body.get("name"), body.get("role"), base_of(request)
    )
    return JSONResponse(
        {"member": _member_shape(added.member), "created": added.created, "link": added.link}, status_code=201
    )


async def member(request: Request) -> Response:
    """PUT {role} changes a member's organisation role; DELETE removes them (never the last owner)."""
    services, user, org_id = await _admin(request, write=True)
    account_id = request.path_params["account_id"]
    if request.method == "DELETE":
        await team.do_remove_member(services, user, org_id, account_id)
        return JSONResponse({"removed": account_id})
    body = await json_body(request)
    old = await team.do_change_role(services, user, org_id, account_id, body.get("role"))
    return JSONResponse({"account_id": account_id, "old": old or None, "role": body.get("role")})


async def member_room(request: Request) -> Response:
    """PUT {role} sets a member's role in one room of the organisation; DELETE (or role null)
    clears it (their organisation role counts again)."""
    services, user, org_id = await _admin(request, write=True)
    account_id, room_id = request.path_params["account_id"], request.path_params["room_id"]
    role = None if request.method == "DELETE" else (await json_body(request)).get("role")
    await team.do_set_room_role(services, user, org_id, account_id, room_id, role)
    return JSONResponse({"account_id": account_id, "room_id": room_id, "role": role or None})


routes: list[BaseRoute] = [
    Route("/studio/team", team_page),
    Route("/api/studio/orgs/{org_id}/members", members, methods=["GET", "POST"]),
    Route("/api/studio/orgs/{org_id}/members/{account_id}", member, methods=["PUT", "DELETE"]),
    Route(
        "/api/studio/orgs/{org_id}/members/{account_id}/rooms/{room_id}",
        member_room,
        methods=["PUT", "DELETE"],
    ),
]
