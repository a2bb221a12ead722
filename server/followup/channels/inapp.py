"""The in-app inbox: the message row is the delivery, the viewer's phone fetches it from the server."""

from __future__ import annotations

from server.followup.channels import Outgoing, Sent


class InAppChannel:
    """Delivers by being recorded: there is no provider to call, so every message is sent at once."""

    name = "inapp"

    async def send(self, message: Outgoing) -> Sent:
        """Accept the message; the stored row is what the phone reads."""
        return Sent()

    async def close(self) -> None:
        """Nothing to release."""
