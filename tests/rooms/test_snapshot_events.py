"""Snapshot + events = fresh snapshot (STYLE habit 5), for every event type and every audience.

For each case: build each role's snapshot, perform the action over the real server, apply the event each
role's client received with the reference reducer, and compare with a snapshot built afterwards. This is
what makes reconnect-and-resume trustworthy, and what the browser's state.js must match.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from itsdangerous.timed import TimestampSigner

from server.auth import Principal, Role
from server.discounts.engine import Engine
from server.domains import default_registry
from server.draws.engine import DrawEngine
from server.intents.log import SalesBoard
from server.questions.feed import Feed
from server.rooms import actions, snapshot, wire
from server.rooms.snapshot import HOST_ANNOUNCEMENTS, apply_event
from server.services import Services
from tests.conftest import make_settings
from tests.helpers import Client, Running, create_room, join, serve

REGISTRY = default_registry()
REDUCERS = REGISTRY.reducers  # the reference reducer's parts, as the app has them

TIMEOUT = 10.0


@dataclass
class World:
    running: Running
    room_id: str
    clients: dict[Role, Client]
    principals: dict[Role, Principal]

    @property
    def services(self) -> Services:
        services: Services = self.running.app.state.services
        return services


Step = Callable[[World], Awaitable[None]]


@pytest.fixture(scope="module")
async def quiet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One server for the module; presence is published only when a test calls presence_tick."""
    async with serve(make_settings(tmp_path_factory.mktemp("snap"), presence_tick_secs=3600.0)) as running:
        yield running


@pytest.fixture
async def world(quiet: Running, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    # The host snapshot's screen link is signed with a timestamp; freeze the signer's clock so two
    # snapshots a second apart differ only in what events describe.
    frozen = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: frozen)
    room = await create_room(quiet)
    viewer = await join(quiet.base, room["id"], "Ann 小明")
    clients = {
        Role.HOST: await Client.connect(quiet.ws, "host", room["id"], {"token": room["host_token"]}),
        Role.VIEWER: await Client.connect(quiet.ws, "viewer", room["id"], {"token": viewer["token"]}),
        Role.SCREEN: await Client.connect(quiet.ws, "screen", room["id"], {"key": room["screen_key"]}),
    }
    principals = {
        Role.HOST: Principal(Role.HOST, room["id"], name="Host"),  # as sessions.authenticate makes it
        Role.VIEWER: Principal(Role.VIEWER, room["id"], viewer["viewer_id"]),
        Role.SCREEN: Principal(Role.SCREEN, room["id"]),
    }
    yield World(quiet, room["id"], clients, principals)
    for client in clients.values():
        await client.close()


async def host_does(world: World, kind: str, data: dict[str, object] | None = None) -> None:
    reply = await world.clients[Role.HOST].request(kind, data)
    assert reply["type"] == "ack", reply


async def catch_up(world: World) -> None:
    """Let every client read up to its stream's head, so the next event it reads is the case's."""
    await settle(world)  # what the preparation left in a tick is published now, not during the step
    for role, client in world.clients.items():
        head = await world.services.hub.backend.head(world.room_id, role.value)
        while client.seq < head.seq:
            await client.recv(TIMEOUT)


async def check(world: World, kind: str, step: Step) -> None:
    """snapshot(before) + the events each role received == snapshot(after), for every role the event
    type goes to. One action may cause several events (a tick sends ``wall`` and ``queue``): all of
    them are applied, in order, and the case's type must be among them."""
    audiences = REGISTRY.events[kind].audiences
    roles = [role for role in world.principals if role.value in audiences]
    before = {role: await snapshot.build(world.services, world.principals[role]) for role in roles}
    start = {role: world.clients[role].seq for role in roles}
    await step(world)
    for role in roles:
        client = world.clients[role]
        if not any(e["type"] == kind and e["seq"] > start[role] for e in client.events):
            await client.recv_type(kind, TIMEOUT)  # (the step's own requests may have read it already)
        head = await world.services.hub.backend.head(world.room_id, role.value)
        while client.seq < head.seq:
            await client.recv(TIMEOUT)
        state = before[role]
        for event in client.events:
            if event["seq"] > start[role]:
                state = apply_event(state, event["type"], event["data"], REDUCERS)
        after = await snapshot.build(world.services, world.principals[role])
        assert state == after, role
        assert before[role] != after, f"{kind}: the case changed nothing for {role}"


# --- the cases, by event type ----------------------------------------------------------------------


def host(*commands: tuple[str, dict[str, object] | None]) -> Step:
    """A step (or preparation) in which the host sends these actions, each acknowledged."""

    async def run(world: World) -> None:
        for kind, data in commands:
            await host_does(world, kind, data)

    return run


async def nothing(world: World) -> None:
    pass


async def presence_tick(world: World) -> None:
    await world.services.hub.presence_tick()


async def prepare_full_list(world: World) -> None:
    for i in range(HOST_ANNOUNCEMENTS):
        await actions.do_announce(world.services, world.room_id, wire.Announce(f"old {i}"))


async def prepare_presence_raised(world: World) -> None:
    """A second viewer came and left: the peak (2) is now above the live count (1)."""
    extra = await join(world.running.base, world.room_id, "brief")
    other = await Client.connect(world.running.ws, "viewer", world.room_id, {"token": extra["token"]})
    hub = world.services.hub
    await hub.presence_tick()
    await other.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while hub.local_viewers(world.room_id) != 1:  # the server notices the close just after the client
        assert loop.time() < deadline, "the second viewer was never detached"
        await asyncio.sleep(0.01)


def viewer(kind: str, data: dict[str, object]) -> Step:
    """A step in which the world's viewer sends an action, acknowledged."""

    async def run(world: World) -> None:
        reply = await world.clients[Role.VIEWER].request(kind, data)
        assert reply["type"] == "ack", reply

    return run


async def last_item(world: World) -> int:
    from server.questions.export import export

    items = (await export(world.services.db, world.room_id))["items"]
    return int(items[-1]["id"])


def host_on_last(kind: str, **extra: object) -> Step:
    """A step in which the host acts on the newest item."""

    async def run(world: World) -> None:
        await host_does(world, kind, {"id": await last_item(world), **extra})

    return run


async def vote_last(world: World) -> None:
    await viewer("item.vote", {"id": await last_item(world), "up": True})(world)


async def mute_viewer(world: World) -> None:
    vid = world.principals[Role.VIEWER].viewer_id
    await host_does(world, "viewer.sanction", {"viewer_id": vid, "mode": "mute", "minutes": 5})


ask = viewer("item.submit", {"kind": "question", "text": "尺码偏大吗？ Does it run large?"})

# --- selling ---

PRODUCT = {"name": "围巾 Scarf", "price_minor": 19900, "stock": 10, "shop_url": "https://shop.example/s"}


async def settle(world: World) -> None:
    """Publish what the per-tick streams (stock counters, claims, funnel) hold right now."""
    services = world.services
    await services.engines.get(Feed).flush()
    await services.engines.get(Engine).flush()
    await services.engines.get(SalesBoard).flush()
    await services.engines.get(DrawEngine).flush()


async def newest(world: World, what: str) -> int:
    from server.discounts.actions import recent_discounts

    if what == "product":
        return int((await actions.room_products(world.services.db, world.room_id))[-1].id or 0)
    return int((await recent_discounts(world.services.db, world.room_id))[-1].id or 0)


async def add_product(world: World) -> None:
    await host_does(world, "product.save", PRODUCT)


async def pinned(world: World) -> None:
    await add_product(world)
    await on_product("product.pin")(world)


def on_product(kind: str, **extra: object) -> Step:
    async def run(world: World) -> None:
        await host_does(world, kind, {"id": await newest(world, "product"), **extra})

    return run


def launch(**extra: object) -> Step:
    async def run(world: World) -> None:
        await add_product(world)
        data = {"product_id": await newest(world, "product"), "percent_off": 20, "quantity": 5}
        await host_does(world, "discount.launch", {**data, "duration_secs": 600, **extra})

    return run


def on_discount(kind: str, **extra: object) -> Step:
    async def run(world: World) -> None:
        await host_does(world, kind, {"id": await newest(world, "discount"), **extra})
        await settle(world)

    return run


async def claim_newest(world: World) -> None:
    await viewer("discount.claim", {"id": await newest(world, "discount")})(world)
    await settle(world)


async def sold_out(world: World) -> None:
    await launch(quantity=1)(world)
    await claim_newest(world)


async def details_seen(world: World) -> None:
    await viewer("intent", {"kind": "product.details", "product_id": await newest(world, "product")})(world)
    await settle(world)


async def follow(world: World) -> None:
    await viewer("room.follow", {"on": True})(world)
    await settle(world)


# --- draws ---

JOIN_DRAW = {"title": "口红 Lipstick", "count": 1, "mode": "join", "window_secs": 60}


async def newest_draw(world: World) -> int:
    from server.draws.store import current_draw

    d = await current_draw(world.services.db, world.room_id)
    assert d is not None
    return int(d.id or 0)


async def draw_entered(world: World) -> None:
    await host_does(world, "draw.create", JOIN_DRAW)
    await viewer("draw.enter", {"id": await newest_draw(world)})(world)
    await settle(world)


def on_draw(kind: str, **extra: object) -> Step:
    async def run(world: World) -> None:
        await host_does(world, kind, {"id": await newest_draw(world), **extra})
        await settle(world)

    return run


async def enter_draw(world: World) -> None:
    await viewer("draw.enter", {"id": await newest_draw(world)})(world)
    await settle(world)


async def drawn(world: World) -> None:
    await draw_entered(world)
    await on_draw("draw.run")(world)


async def claim_prize(world: World) -> None:
    await viewer("draw.claim", {"id": await newest_draw(world), "name": "小明", "email": "ming@example.com"})(
        world
    )
    await settle(world)


async def campaign_sent(world: World) -> None:
    """A post-stream campaign to the room's audience, in-app, until the runner has sent it."""
    import httpx

    token = world.services.tokens.host(world.room_id, 1)
    async with httpx.AsyncClient(
        base_url=world.running.base, headers={"authorization": f"Bearer {token}"}
    ) as http:
        body = {"name": "Thanks", "segment": "attended", "channel": "inapp", "template": "post-stream"}
        r = await http.post(f"/api/rooms/{world.room_id}/followup/campaigns", json=body)
        assert r.status_code == 200, r.text
    host_client = world.clients[Role.HOST]
    event = await host_client.recv_type("followup", TIMEOUT)
    while not event["data"]["campaigns"] or event["data"]["campaigns"][0]["status"] != "done":
        event = await host_client.recv_type("followup", TIMEOUT)


# kind -> [(case name, preparation, step)]; every server event type must appear here.
CASES: dict[str, list[tuple[str, Step, Step]]] = {
    "room.status": [
        ("start", nothing, host(("room.start", None))),
        ("end", host(("room.start", None)), host(("room.end", None))),
        ("start again", host(("room.start", None), ("room.end", None)), host(("room.start", None))),
    ],
    "announcement": [
        ("first", nothing, host(("announce", {"text": "第一条 first 🎉"}))),
        ("second", host(("announce", {"text": "one"})), host(("announce", {"text": "two\nlines"}))),
        ("host list full", prepare_full_list, host(("announce", {"text": "pushes the oldest out"}))),
    ],
    "presence": [
        ("first count", nothing, presence_tick),
        ("count below peak", prepare_presence_raised, presence_tick),
    ],
    "wall": [
        ("comment", nothing, viewer("item.submit", {"text": "好看 😍"})),
        ("question", nothing, ask),
        ("vote", ask, vote_last),
        ("hide", ask, host_on_last("item.hide")),
        ("typed answer", ask, host_on_last("item.answer", text="Yes, one size up.")),
    ],
    "queue": [
        ("question", nothing, ask),
        ("claim", ask, host_on_last("item.claim")),
        ("private reply", ask, host_on_last("item.reply", text="Sent you a size chart")),
    ],
    "spotlight": [
        ("answer now", ask, host_on_last("item.spotlight")),
    ],
    "room.settings": [
        ("layout", nothing, host(("settings.update", {"layout": "spotlight"}))),
        (
            "pre-moderation and slow mode",
            nothing,
            host(("settings.update", {"moderation": "pre", "slow_mode_secs": 5})),
        ),
    ],
    "blocklist": [
        ("edit", nothing, host(("settings.update", {"blocklist": ["spam", "广告"]}))),
    ],
    "sanctions": [
        ("mute", nothing, mute_viewer),
    ],
    "products": [
        ("add", nothing, add_product),
        ("edit", add_product, on_product("product.save", **{**PRODUCT, "price_minor": 15900})),
        ("remove", add_product, on_product("product.remove")),
    ],
    "pinned": [
        ("pin", add_product, on_product("product.pin")),
        ("unpin", pinned, on_product("product.pin", id=None)),
    ],
    "discount": [
        ("launch", nothing, launch()),
        ("stop", launch(), on_discount("discount.stop")),
        ("add stock", launch(), on_discount("discount.update", add_stock=3)),
        ("restock a sold-out deal", sold_out, on_discount("discount.update", add_stock=2)),
        ("price and end", launch(), on_discount("discount.update", price_minor=9900, extend_secs=60)),
    ],
    "stock": [
        ("claim", launch(), claim_newest),
        ("last unit", launch(quantity=1), claim_newest),
    ],
    "claims": [
        ("claim", launch(), claim_newest),
    ],
    "draw": [
        ("set up", nothing, host(("draw.create", JOIN_DRAW))),
        ("close entries", draw_entered, on_draw("draw.close")),
        ("draw", draw_entered, on_draw("draw.run")),
        ("claim", drawn, claim_prize),
        ("confirm", drawn, on_draw("draw.confirm", place=1)),
        ("cancel", host(("draw.create", JOIN_DRAW)), on_draw("draw.cancel")),
    ],
    "draw.entrants": [
        ("enter", host(("draw.create", JOIN_DRAW)), enter_draw),
    ],
    "followup": [
        ("campaign sent", nothing, campaign_sent),
    ],
    "sales": [
        ("details opened", add_product, details_seen),
        ("follow", nothing, follow),
    ],
}


@pytest.mark.parametrize(
    ("kind", "prepare", "step"),
    [
        pytest.param(kind, prep, step, id=f"{kind}: {name}")
        for kind, cases in CASES.items()
        for name, prep, step in cases
    ],
)
async def test_snapshot_plus_event_is_fresh_snapshot(
    world: World, kind: str, prepare: Step, step: Step
) -> None:
    """Applying the received event to the old snapshot gives the new snapshot, for host, viewer and screen."""
    await prepare(world)
    await catch_up(world)
    await check(world, kind, step)


def test_every_event_type_has_a_case() -> None:
    """Every event type the server defines has a snapshot + event case above."""
    defined = {kind for kind, cls in REGISTRY.events.items() if cls.__module__.startswith("server.")}
    missing = defined - set(CASES)
    assert not missing, f"add snapshot + event cases to {Path(__file__).name} for: {sorted(missing)}"
    assert set(CASES) <= defined, "CASES names an event type that no longer exists"


async def test_a_count_older_than_the_room_total_is_not_published(world: World) -> None:
    """on_presence with a count that is no longer the room's total (another process has computed a
    newer one since) publishes nothing; the current count is published."""
    services, room_id = world.services, world.room_id
    await catch_up(world)
    await services.hub.presence_tick()  # the room's total is now 1
    await actions.on_presence(services, room_id, 5)  # computed earlier, arriving late
    await actions.do_announce(services, room_id, wire.Announce("marker"))
    host = world.clients[Role.HOST]
    seen = []
    while (event := await host.recv(TIMEOUT))["type"] != "announcement":
        seen.append(event)
    assert [e["data"]["viewers"] for e in seen if e["type"] == "presence"] in ([], [1])
    await actions.on_presence(services, room_id, 1)
    assert (await host.recv_type("presence", TIMEOUT))["data"]["viewers"] == 1
