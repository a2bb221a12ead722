"""The welcome tells a console what it may do: its scopes, and for a signed-in member their role and
name (the console hides the rest; the server refuses it anyway)."""

from __future__ import annotations

from server.auth import MEMBER_SCOPES, ROOM_SCOPES, MemberRole
from server.services import Services
from tests.helpers import Client, Running, create_room, join
from tests.studio.test_audit import person


async def test_welcome_carries_the_consoles_scopes(running: Running) -> None:
    """Host key: every room scope and no member; a moderator: their role's scopes, role and name;
    a viewer: no scopes at all."""
    services: Services = running.app.state.services
    room = await create_room(running)
    key = await Client.connect(running.ws, "host", room["id"], {"token": room["host_token"], "name": "Ann"})
    assert key.welcome["scopes"] == sorted(ROOM_SCOPES)
    assert "member" not in key.welcome and key.welcome["name"] == "Ann"

    moderator = await person(services.db, MemberRole.MODERATOR)
    token = services.tokens.member_host(room["id"], moderator.session_id)
    member = await Client.connect(running.ws, "host", room["id"], {"token": token, "name": "Someone else"})
    assert member.welcome["scopes"] == sorted(MEMBER_SCOPES[MemberRole.MODERATOR])
    assert member.welcome["member"] == {"role": "moderator", "name": "Moderator Li"}
    assert member.welcome["name"] == "Moderator Li"  # a member is named by their account

    joined = await join(running.base, room["id"], "Bo")
    phone = await Client.connect(running.ws, "viewer", room["id"], {"token": joined["token"]})
    assert "scopes" not in phone.welcome and "member" not in phone.welcome
    for c in (key, member, phone):
        await c.close()
