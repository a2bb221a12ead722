"""Host keys per room and the console opened from the studio: turning the key off closes the consoles
opened with it and refuses new key logins while members' consoles go on; a signed-in member opens
the console without the key, anyone else without a role is refused."""

from __future__ import annotations

import httpx

from server.auth import MemberRole
from server.rooms.actions import create_room
from server.rooms.identity import host_cookie
from tests.helpers import Client, Running
from tests.studio.rooms_support import organisation, person, services_of, studio


async def test_turning_the_host_key_off_closes_its_consoles_and_refuses_the_key(running: Running) -> None:
    """A host-key console is closed (revoked) at once; logging in with the key is refused (page and
    API) until it is turned on again; a member's console keeps working throughout."""
    services = services_of(running)
    room, key = await create_room(services.db, title="Key room")
    owner = await person(running, MemberRole.OWNER)
    host = await person(running, MemberRole.HOST)
    by_key = await Client.connect(
        running.ws, "host", room.id, {"token": services.tokens.host(room.id, room.host_key_gen)}
    )
    member = await Client.connect(
        running.ws, "host", room.id, {"token": services.tokens.member_host(room.id, host.session_id)}
    )
    async with studio(running, owner) as http:
        off = await http.post(f"/api/studio/rooms/{room.id}/host-key", json={"enabled": False})
        assert off.status_code == 200 and off.json()["host_key_enabled"] is False
        revoked = await by_key.recv_type("error")
        assert revoked["data"]["code"] == "revoked"
        ack = await member.request("announce", {"text": "Still on air"})
        assert ack["type"] == "ack", ack
        async with httpx.AsyncClient(base_url=running.base) as anon:
            login = await anon.post(f"/host/{room.id}/login", data={"key": key})
            assert login.status_code == 403 and "data-login-key-off" in login.text
            assert f"/studio/signin?next=/host/{room.id}" in login.text
            page = await anon.get(f"/host/{room.id}/login")
            assert "data-login-key-off" in page.text and 'name="key"' not in page.text
            api = await anon.post(f"/api/rooms/{room.id}/host-token", json={"key": key})
            assert api.status_code == 403
            on = await http.post(f"/api/studio/rooms/{room.id}/host-key", json={"enabled": True})
            assert on.json()["host_key_enabled"] is True
            again = await anon.post(f"/host/{room.id}/login", data={"key": key})
            assert again.status_code == 303
        bad = await http.post(f"/api/studio/rooms/{room.id}/host-key", json={"enabled": "no"})
        assert bad.status_code == 422 and "enabled" in bad.json()["error"]["message"]
    async with studio(running, host) as http:
        by_host = await http.post(f"/api/studio/rooms/{room.id}/host-key", json={"enabled": False})
        assert by_host.status_code == 200  # a host holds room:admin
    await member.close()
    await by_key.close()


async def test_a_member_opens_the_console_from_the_studio(running: Running) -> None:
    """With a studio session and a role in the room, /host/{room} sets a member console cookie and
    shows the console; a member of another organisation gets 403; without either, the key login
    (which links to the studio sign-in)."""
    services = services_of(running)
    room, _key = await create_room(services.db, title="Studio console")
    await organisation(running, "other")
    seller = await person(running, MemberRole.SELLER)
    stranger = await person(running, MemberRole.OWNER, org_id="other")
    async with studio(running, seller) as http:
        page = await http.get(f"/host/{room.id}")
        assert page.status_code == 200 and "data-start" in page.text
        token = page.cookies.get(host_cookie(room.id)) or http.cookies.get(host_cookie(room.id))
        assert token
        console = await Client.connect(running.ws, "host", room.id, {"token": token})
        refused = await console.request("room.start")
        assert refused["type"] == "error" and refused["data"]["code"] == "forbidden"
        await console.close()
    async with studio(running, stranger) as http:
        page = await http.get(f"/host/{room.id}")
        assert page.status_code == 403
    async with httpx.AsyncClient(base_url=running.base) as anon:
        page = await anon.get(f"/host/{room.id}")
        assert page.status_code == 303 and page.headers["location"] == f"/host/{room.id}/login"
        login = await anon.get(f"/host/{room.id}/login")
        assert f"/studio/signin?next=/host/{room.id}" in login.text and 'name="key"' in login.text
