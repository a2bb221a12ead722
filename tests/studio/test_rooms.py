"""The studio's rooms: listed by status and searched within the person's organisations, created and
scheduled with checked input, a cover stored stripped, cloned with products and presets, posters."""

from __future__ import annotations

import re
from io import BytesIO

import orjson
from PIL import Image
from sqlmodel import col, select

from server.auth import MemberRole
from server.rooms.wire import ProductSeed
from server.storage import now_ms
from server.storage.accounts import Preset
from server.storage.models import Claim, Discount, Item, Product, Room, RoomViewer
from tests.helpers import Running, join
from tests.studio.rooms_support import organisation, person, room_in, services_of, studio

HOUR_MS = 3600_000


async def test_list_filters_by_status_and_searches_titles_of_own_organisations(running: Running) -> None:
    """The tabs filter by status, q matches titles case-insensitively (its % taken literally), and
    another organisation's rooms never show."""
    owner = await person(running, MemberRole.ANALYST)
    await organisation(running, "other")
    live = await room_in(running, "Tea LIVE tasting")
    await room_in(running, "Tea 50% off night", scheduled_ms=now_ms() + HOUR_MS)
    theirs = await room_in(running, "Tea of another shop", org_id="other")
    async with services_of(running).db.session() as session:
        row = await session.get(Room, live.id)
        assert row is not None
        row.status = "live"
        session.add(row)
        await session.commit()
    async with studio(running, owner) as http:
        everything = (await http.get("/api/studio/rooms")).json()
        assert theirs.id not in {r["id"] for r in everything["rooms"]}
        assert everything["total"] == 2
        by_status = (await http.get("/api/studio/rooms", params={"status": "live"})).json()
        assert [r["id"] for r in by_status["rooms"]] == [live.id]
        found = (await http.get("/api/studio/rooms", params={"q": "tea live"})).json()
        assert [r["title"] for r in found["rooms"]] == ["Tea LIVE tasting"]
        percent = (await http.get("/api/studio/rooms", params={"q": "50%"})).json()
        assert [r["title"] for r in percent["rooms"]] == ["Tea 50% off night"]
        none = (await http.get("/api/studio/rooms", params={"q": "%"})).json()
        assert [r["title"] for r in none["rooms"]] == ["Tea 50% off night"]
        bad = await http.get("/api/studio/rooms", params={"status": "paused"})
        assert bad.status_code == 422 and "status" in bad.json()["error"]["message"]
        page = await http.get("/studio", params={"status": "scheduled"})
        assert page.status_code == 200
        assert "Tea 50% off night" in page.text and "Tea LIVE tasting" not in page.text
        assert "Tea of another shop" not in page.text


async def test_without_a_session_pages_redirect_and_the_api_answers_401(running: Running) -> None:
    """Pages send the signed-out to the sign-in with ``next``; the JSON API answers 401."""
    room = await room_in(running)
    async with studio(running, await person(running, MemberRole.OWNER)) as signed_in:
        signed_in.cookies.clear()
        page = await signed_in.get(f"/studio/rooms/{room.id}")
        assert page.status_code == 303
        assert page.headers["location"] == f"/studio/signin?next=/studio/rooms/{room.id}"
        api = await signed_in.get("/api/studio/rooms")
        assert api.status_code == 401 and api.json()["error"]["code"] == "signed_out"


async def test_create_and_schedule_refuse_bad_input_naming_the_field(running: Running) -> None:
    """A start time in the past, a description over 2,000 characters or no title: 422 naming it."""
    owner = await person(running, MemberRole.HOST)
    async with studio(running, owner) as http:
        past = await http.post("/api/studio/rooms", json={"title": "Late", "scheduled_ms": now_ms() - 1000})
        assert past.status_code == 422 and "scheduled_ms" in past.json()["error"]["message"]
        long = await http.post("/api/studio/rooms", json={"title": "Wordy", "description": "x" * 2001})
        assert long.status_code == 422 and "description" in long.json()["error"]["message"]
        untitled = await http.post("/api/studio/rooms", json={"title": " "})
        assert untitled.status_code == 422 and "title" in untitled.json()["error"]["message"]
        when = now_ms() + 2 * HOUR_MS
        made = await http.post(
            "/api/studio/rooms", json={"title": "Autumn tea", "scheduled_ms": when, "description": "Oolong"}
        )
        assert made.status_code == 201
        room = made.json()
        assert room["status"] == "scheduled" and room["scheduled_ms"] == when and room["org_id"] == "default"
        changed = await http.patch(f"/api/studio/rooms/{room['id']}", json={"title": "Autumn teas"})
        assert changed.status_code == 200 and changed.json()["scheduled_ms"] == when
        moved = await http.patch(f"/api/studio/rooms/{room['id']}", json={"scheduled_ms": now_ms() - 5})
        assert moved.status_code == 422 and "scheduled_ms" in moved.json()["error"]["message"]
        form = await http.post(
            "/studio/rooms/new", data={"title": "From the form", "scheduled_ms": str(when), "description": ""}
        )
        assert form.status_code == 303 and form.headers["location"].startswith("/studio/rooms/")


async def test_roles_without_room_admin_cannot_create_or_schedule(running: Running) -> None:
    """A moderator sees the rooms but may not create or change them (403); another organisation's
    room is not found (404)."""
    await organisation(running, "other")
    mine = await room_in(running)
    theirs = await room_in(running, org_id="other")
    moderator = await person(running, MemberRole.MODERATOR)
    async with studio(running, moderator) as http:
        assert (await http.post("/api/studio/rooms", json={"title": "No"})).status_code == 403
        assert (await http.patch(f"/api/studio/rooms/{mine.id}", json={"title": "No"})).status_code == 403
        assert (await http.get(f"/api/studio/rooms/{mine.id}")).status_code == 200
        assert (await http.get(f"/api/studio/rooms/{theirs.id}")).status_code == 404
        assert (await http.get(f"/studio/rooms/{theirs.id}")).status_code == 404
        assert (await http.post(f"/api/studio/rooms/{theirs.id}/clone")).status_code == 404


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x8825] = {2: (31.0, 14.0, 0.0)}  # a GPS position
    exif[0x010F] = "PhoneMaker"
    out = BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_cover_upload_is_stored_stripped_and_shown(running: Running) -> None:
    """A cover is re-encoded as WebP without its EXIF, shown on the room page and served; bytes that
    are not an image are refused (422); DELETE removes it."""
    room = await room_in(running)
    owner = await person(running, MemberRole.OWNER)
    async with studio(running, owner) as http:
        bad = await http.put(
            f"/api/studio/rooms/{room.id}/cover",
            content=b"not an image",
            headers={"content-type": "image/png"},
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_image"
        raw = _jpeg_with_gps()
        put = await http.put(
            f"/api/studio/rooms/{room.id}/cover", content=raw, headers={"content-type": "image/jpeg"}
        )
        assert put.status_code == 200, put.text
        cover = put.json()["cover"]
        assert re.fullmatch(r"/media/[0-9a-f]{32}\.webp", cover)
        served = await http.get(cover)
        assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
        with Image.open(BytesIO(served.content)) as stored:
            assert stored.format == "WEBP" and stored.size == (64, 48)
            assert not stored.getexif()
        page = await http.get(f"/studio/rooms/{room.id}")
        assert f'src="{cover}"' in page.text
        multipart = await http.put(
            f"/api/studio/rooms/{room.id}/cover", files={"cover": ("c.jpg", raw, "image/jpeg")}
        )
        assert multipart.status_code == 200 and multipart.json()["cover"] == cover
        gone = await http.delete(f"/api/studio/rooms/{room.id}/cover")
        assert gone.status_code == 200 and gone.json()["cover"] is None


async def test_clone_copies_products_and_presets_not_the_audience(running: Running) -> None:
    """The copy is a scheduled room with the title + " (copy)", the shelf (new ids, archived left
    out), the presets (discounts naming the copied product); no viewers, questions or claims."""
    seeds = [ProductSeed("Green tea", 1990, stock=5, sku="G1"), ProductSeed("Old mug", 500)]
    source = await room_in(running, "Tea night", products=seeds, description="Bring a cup")
    db = services_of(running).db
    async with db.session() as session:
        products = (await session.exec(select(Product).where(Product.room_id == source.id))).all()
        tea = next(p for p in products if p.name == "Green tea")
        mug = next(p for p in products if p.name == "Old mug")
        mug.archived = True
        session.add(mug)
        launch = {"product_id": tea.id, "price_minor": 990, "quantity": 10, "duration_secs": 300}
        session.add(
            Preset(
                room_id=source.id,
                kind="discount",
                label="Half",
                payload=orjson.dumps(launch).decode(),
                created_ms=1,
            )
        )
        draw = {"title": "Cup", "mode": "join", "count": 1}
        session.add(
            Preset(
                room_id=source.id, kind="draw", label="Cup", payload=orjson.dumps(draw).decode(), created_ms=1
            )
        )
        await session.commit()
    joined = await join(running.base, source.id, "Wu")
    async with db.session() as session:
        assert tea.id is not None
        discount = Discount(
            room_id=source.id,
            product_id=tea.id,
            price_minor=990,
            list_price_minor=1990,
            currency="CNY",
            quantity=3,
            starts_ms=1,
            ends_ms=2,
            status="ended",
            created_ms=1,
        )
        session.add(discount)
        await session.flush()
        assert discount.id is not None
        session.add(
            Claim(
                room_id=source.id,
                discount_id=discount.id,
                viewer_id=joined["viewer_id"],
                code="C1",
                price_minor=990,
                status="reserved",
                created_ms=1,
                expires_ms=2,
            )
        )
        session.add(
            Item(room_id=source.id, viewer_id=joined["viewer_id"], kind="question", text="Hot?", created_ms=1)
        )
        await session.commit()
    owner = await person(running, MemberRole.HOST)
    async with studio(running, owner) as http:
        made = await http.post(f"/api/studio/rooms/{source.id}/clone")
        assert made.status_code == 201, made.text
        copy = made.json()
    assert copy["title"] == "Tea night (copy)" and copy["status"] == "scheduled"
    assert copy["cloned_from"] == source.id and copy["description"] == "Bring a cup"
    async with db.session() as session:
        shelf = (await session.exec(select(Product).where(Product.room_id == copy["id"]))).all()
        assert [(p.name, p.price_minor, p.stock, p.sku) for p in shelf] == [("Green tea", 1990, 5, "G1")]
        assert shelf[0].id != tea.id
        presets = (
            await session.exec(select(Preset).where(Preset.room_id == copy["id"]).order_by(col(Preset.id)))
        ).all()
        assert [(p.kind, p.label) for p in presets] == [("discount", "Half"), ("draw", "Cup")]
        assert orjson.loads(presets[0].payload)["product_id"] == shelf[0].id
        for table in (RoomViewer, Item, Claim, Discount):
            rows = (await session.exec(select(table).where(table.room_id == copy["id"]))).all()  # type: ignore[attr-defined]
            assert rows == [], table


async def test_posters_download_as_png_and_pdf(running: Running) -> None:
    """The poster downloads as a PNG that decodes and as a PDF, for any member of the room."""
    room = await room_in(running, "茶话会", scheduled_ms=now_ms() + HOUR_MS)
    analyst = await person(running, MemberRole.ANALYST)
    async with studio(running, analyst) as http:
        png = await http.get(f"/studio/rooms/{room.id}/poster.png", params={"tz": "Asia/Shanghai"})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        with Image.open(BytesIO(png.content)) as page:
            page.load()
            assert page.size == (1240, 1754)
        pdf = await http.get(f"/studio/rooms/{room.id}/poster.pdf", headers={"accept-language": "zh-CN"})
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        assert (await http.get(f"/studio/rooms/{room.id}/poster.gif")).status_code == 404


async def test_room_page_shows_links_by_role(running: Running) -> None:
    """A room admin sees the big-screen and OBS links; an analyst sees the viewer and console links
    only; both see the remind-me count."""
    room = await room_in(running)
    host = await person(running, MemberRole.HOST)
    analyst = await person(running, MemberRole.ANALYST)
    async with studio(running, host) as http:
        page = (await http.get(f"/studio/rooms/{room.id}")).text
        assert f"/screen/{room.id}?k=" in page and "Browser Source" in page
        assert f"/r/{room.id}" in page and f"/host/{room.id}" in page and "data-reminders" in page
    async with studio(running, analyst) as http:
        page = (await http.get(f"/studio/rooms/{room.id}")).text
        assert f"/screen/{room.id}" not in page and f"/r/{room.id}" in page
        data = (await http.get(f"/api/studio/rooms/{room.id}")).json()
        assert data["links"]["screen"] is None and data["reminders"] == 0
