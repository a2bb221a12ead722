"""Follow-up tracked links carry UTM parameters (configurable per room), and a click makes the
message the last touch of the viewer's next order (docs/revenue.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from server.followup.links import with_utm
from server.storage.followup import Message
from server.storage.models import RoomViewer
from tests.followup.channels.conftest import Smtp
from tests.followup.flow import Stage, eventually, links_in, stage
from tests.followup.test_flow import EMAIL, _first, confirmed_contact, smtp_settings
from tests.sources.support import orders


def test_a_links_own_utm_parameters_are_kept() -> None:
    """Parameters the link already carries win; empty ones are left out; the rest of the link stays."""
    url = with_utm(
        "https://shop.example/p?id=7&utm_source=kol#top",
        {"utm_source": "livewall", "utm_medium": "email", "utm_campaign": None, "utm_content": "t"},
    )
    assert url == "https://shop.example/p?id=7&utm_source=kol&utm_medium=email&utm_content=t#top"


async def _reminder_hop(s: Stage, smtp: Smtp) -> tuple[Message, str]:
    """A buy click without payment, the reminder email, and where its tracked link goes."""
    phone = await confirmed_contact(s, smtp)
    await phone.get(f"/r/{s.room_id}/buy/{s.product['id']}")
    mail = await eventually(lambda: _first(smtp, EMAIL, skip=1))
    tracked = [u for u in links_in(mail.message.get_body(("plain",)).get_content()) if "/t/" in u]
    sent = (await eventually(lambda: s.messages(template="unpaid-reminder")))[0]
    async with httpx.AsyncClient() as browser:
        hop = await browser.get(tracked[0])
    assert hop.status_code == 302
    await phone.aclose()
    return sent, hop.headers["location"]


async def test_reminder_links_carry_utm_and_the_click_is_the_orders_last_touch(
    tmp_path: Path, smtp_server: Callable[..., Smtp]
) -> None:
    """utm_source/medium/campaign/content on the email's link; the clicked message lands on the order."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        sent, location = await _reminder_hop(s, smtp)
        query = parse_qs(urlsplit(location).query)
        assert urlsplit(location).path == f"/r/{s.room_id}/buy/{s.product['id']}"
        assert query == {
            "utm_source": ["livewall"],
            "utm_medium": ["email"],
            "utm_campaign": ["unpaid-reminder"],
            "utm_content": [sent.template],
        }
        assert sent.viewer_id is not None
        async with s.services.db.session() as session:
            seen = await session.get(RoomViewer, (s.room_id, sent.viewer_id))
        assert seen is not None and seen.last_message_id == sent.id
        paid = await s.shop(
            "order.paid",
            {"order_id": "SO-9", "viewer_id": sent.viewer_id, "amount_minor": 6800, "currency": "CNY"},
        )
        assert paid.status_code == 200, paid.text
        (order,) = await orders(s.running, s.room_id)
        assert (order.message_id, order.amount_minor) == (sent.id, 6800)


async def test_utm_can_be_turned_off_or_given_another_source(
    tmp_path: Path, smtp_server: Callable[..., Smtp]
) -> None:
    """The room's follow-up settings: utm false leaves links as they were; a bad utm_source is refused."""
    smtp = smtp_server()
    async with stage(tmp_path, **smtp_settings(smtp)) as s:
        async with s.host_http() as http:
            bad = await http.put(f"/api/rooms/{s.room_id}/followup/settings", json={"utm_source": "a b"})
            assert bad.status_code == 422 and "utm_source" in bad.json()["error"]["message"]
            shown = await http.put(f"/api/rooms/{s.room_id}/followup/settings", json={"utm_source": "shop-x"})
            assert shown.json()["utm_source"] == "shop-x" and shown.json()["utm"] is True
        await s.settings(utm=False)
        _sent, location = await _reminder_hop(s, smtp)
        assert location.endswith(f"/r/{s.room_id}/buy/{s.product['id']}")
