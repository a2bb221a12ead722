"""In-app channel: the stored message is the delivery."""

from __future__ import annotations

from server.followup.channels import Outgoing
from server.followup.channels.inapp import InAppChannel


async def test_sends_at_once() -> None:
    """Every message is sent immediately, with no provider id."""
    channel = InAppChannel()
    sent = await channel.send(
        Outgoing(idem_key="m-1", to="viewer-1", subject="Hi", text="Thanks for watching")
    )
    await channel.close()
    assert sent.provider_id is None
