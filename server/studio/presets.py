"""Presets: discounts and draws set up before the show and launched with one click during it.

A preset's payload is the data of the ``discount.launch`` or ``draw.create`` message it becomes. It is
checked when it is saved with the discounts' and draws' own parsers (what would be refused at launch
is refused now), and parsed again when launched: a product archived meanwhile, or a price changed
under a deal price, is refused then with a clear error. Launching goes through the domains' normal
``do_launch`` / ``do_create`` with the console's principal, as a typed message would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import update
from sqlmodel import col, func, select

from server.accounts.identity import StudioUser
from server.auth import MEMBER_SCOPES, MemberRole, Principal, Scope
from server.discounts import actions as discounts
from server.discounts import wire as discounts_wire
from server.draws import actions as draws
from server.draws import wire as draws_wire
from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.products.actions import load_product
from server.services import Services
from server.storage import Database, now_ms
from server.storage.accounts import Preset
from server.storage.models import Room
from server.studio import rooms_wire as wire
from server.studio.rooms import audit
from server.text import clean_id

SCOPE_OF_KIND = {"discount": Scope.DEALS, "draw": Scope.DRAWS}
CATEGORY_OF_KIND = {"discount": "deals", "draw": "draws"}
MAX_PRESETS = 100  # per room: more than any show launches
MAX_PAYLOAD_BYTES = 8 * 1024  # a draw with ten prize tiers and image links is about 2 KiB


def check_kind(role: MemberRole, kind: object) -> str:
    """The preset kind, if the role may prepare it: discounts need deals:run, draws draws:run."""
    if kind not in wire.PRESET_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(wire.PRESET_KINDS)}")
    assert isinstance(kind, str)
    scope = SCOPE_OF_KIND[kind]
    if scope not in MEMBER_SCOPES[role]:
        raise Forbidden(f"the {role} role may not prepare {kind}s (needs {scope})")
    return kind


async def _checked(db: Database, room_id: str, kind: str, payload: dict[str, Any]) -> str:
    """The payload as stored JSON, after the domain's own parser accepted it."""
    if kind == "discount":
        product = await load_product(db, room_id, payload.get("product_id"))
        discounts_wire.parse_launch(payload, product.price_minor)
    else:
        draws_wire.parse_create(payload)
    text = orjson.dumps(payload).decode()
    if len(text) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"payload: at most {MAX_PAYLOAD_BYTES} bytes")
    return text


async def room_presets(db: Database, room_id: str) -> list[Preset]:
    """The room's presets, in the order they were made."""
    async with db.session() as session:
        found = await session.exec(
            select(Preset).where(col(Preset.room_id) == room_id).order_by(col(Preset.id))
        )
        return list(found.all())


async def load_preset(db: Database, room_id: str, preset_id: object) -> Preset:
    """A preset of this room, or NotFound (another room's is not found either)."""
    async with db.session() as session:
        preset = await session.get(Preset, clean_id(preset_id))
    if preset is None or preset.room_id != room_id:
        raise NotFound("no such preset in this room")
    return preset


async def do_save(
    services: Services,
    user: StudioUser,
    room: Room,
    role: MemberRole,
    data: Mapping[str, Any],
    preset_id: int | None = None,
) -> Preset:
    """Create a preset (``kind``, ``label``, ``payload``) or change one's label and payload."""
    if preset_id is not None:
        preset = await load_preset(services.db, room.id, preset_id)
        kind = check_kind(role, preset.kind)
    else:
        kind = check_kind(role, data.get("kind"))
        preset = Preset(room_id=room.id, kind=kind, label="", payload="{}", created_ms=now_ms())
    label = wire.parse_label(data)
    payload = await _checked(services.db, room.id, kind, wire.parse_payload(data))
    async with services.db.session() as session:
        if preset_id is None:
            count = await session.exec(
                select(func.count()).select_from(Preset).where(col(Preset.room_id) == room.id)
            )
            if count.one() >= MAX_PRESETS:
                raise Conflict(f"a room holds at most {MAX_PRESETS} presets")
        preset.label, preset.payload = label, payload
        session.add(preset)
        await session.commit()
        await session.refresh(preset)
    action = "preset.create" if preset_id is None else "preset.update"
    audit(
        services,
        user,
        action,
        room,
        category=CATEGORY_OF_KIND[kind],
        target=f"id={preset.id}",
        detail={"label": label, "kind": kind},
    )
    return preset


async def do_delete(
    services: Services, user: StudioUser, room: Room, role: MemberRole, preset_id: int
) -> None:
    preset = await load_preset(services.db, room.id, preset_id)
    check_kind(role, preset.kind)
    async with services.db.session() as session:
        row = await session.get(Preset, preset_id)
        if row is not None:
            await session.delete(row)
            await session.commit()
    audit(
        services,
        user,
        "preset.delete",
        room,
        category=CATEGORY_OF_KIND[preset.kind],
        target=f"id={preset_id}",
        detail={"label": preset.label},
    )


async def _launched(db: Database, preset_id: int) -> None:
    async with db.session() as session:
        await session.exec(update(Preset).where(col(Preset.id) == preset_id).values(launched_ms=now_ms()))
        await session.commit()


async def launch_discount(
    services: Services, principal: Principal, preset_id: object
) -> discounts_wire.DiscountView:
    """Launch a discount preset of the console's room, as discount.launch would."""
    preset = await load_preset(services.db, principal.room_id, preset_id)
    if preset.kind != "discount":
        raise NotFound("no such discount preset in this room")
    payload = wire.preset_payload(preset)
    try:
        product = await load_product(services.db, principal.room_id, payload.get("product_id"))
    except (NotFound, InvalidInput):
        raise Conflict(
            f"the product of the preset {preset.label!r} is no longer on the shelf", code="preset_stale"
        ) from None
    launch = discounts_wire.parse_launch(payload, product.price_minor)
    view = await discounts.do_launch(services, principal, product, launch)
    assert preset.id is not None
    await _launched(services.db, preset.id)
    return view


async def launch_draw(services: Services, principal: Principal, preset_id: object) -> draws_wire.DrawView:
    """Set up a draw preset of the console's room, as draw.create would."""
    preset = await load_preset(services.db, principal.room_id, preset_id)
    if preset.kind != "draw":
        raise NotFound("no such draw preset in this room")
    view = await draws.do_create(services, principal, draws_wire.parse_create(wire.preset_payload(preset)))
    assert preset.id is not None
    await _launched(services.db, preset.id)
    return view
