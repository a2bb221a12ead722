"""The follow-up domain: contacts and consent, journeys, campaigns, delivery on every channel."""

from __future__ import annotations

from collections.abc import Mapping

from server.discounts.engine import Engine as DiscountEngine
from server.domain import Domain, EngineSpec, Hooks, PrizeClaim, events_of
from server.followup import console, contacts, events, http, outreach, recipients, snapshot
from server.followup import events as followup_events
from server.followup.channels import Channel
from server.followup.channels.registry import close_all, make_channels
from server.followup.runner import Runner, host_notifier
from server.realtime.protocol import direct_frame
from server.services import Services


class Channels:
    """The configured channels of this process (closed when the app stops, after the runner)."""

    def __init__(self, channels: Mapping[str, Channel]) -> None:
        self.channels = dict(channels)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await close_all(self.channels)


def _channels(services: Services) -> Channels:
    return Channels(make_channels(services.settings))


def _runner(services: Services) -> Runner:
    hub = services.hub

    async def show_inapp(room_id: str, viewer_ids: list[str], item: dict[str, object]) -> None:
        frame = direct_frame("inbox", item)
        for viewer_id in viewer_ids:
            await hub.send_private(room_id, viewer_id, frame)

    discounts = services.engines.find(DiscountEngine)
    return Runner(
        services.db,
        services.settings,
        services.engines.get(Channels).channels,
        on_change=host_notifier(services.db, hub),
        on_inapp=show_inapp,
        rushing=discounts.rushing if discounts is not None else None,
        metrics=services.metrics,
        sandbox=services.sandbox,
    )


def _wake(services: Services) -> None:
    """An intent was recorded: the runner takes it up at once, not at its next look."""
    services.engines.get(Runner).wake()


async def _prize_claimed(services: Services, claim: PrizeClaim) -> None:
    """A prize claim makes the winner a contact; with consent, a channel for follow-up messages
    (email still needs the double opt-in)."""
    says = []
    if claim.consent:
        wording, lang, room_id = claim.wording, claim.lang, claim.room_id
        if claim.email:
            says.append(contacts.Say("email", "pending", "draw claim", wording, lang, room_id=room_id))
        if claim.phone:
            says.append(contacts.Say("sms", "granted", "draw claim", wording, lang, room_id=room_id))
    found, pending = await contacts.identify(
        services.db,
        viewer_id=claim.viewer_id,
        name=claim.name,
        email=claim.email,
        phone=claim.phone,
        says=says,
    )
    if "email" in pending:
        address = found.pending_email or found.email
        await contacts.queue_confirmation(services.db, claim.room_id, found, address)


DOMAIN = Domain(
    name="followup",
    events=events_of(followup_events),
    routes=[*http.routes, *recipients.routes, *console.routes, *outreach.routes],
    snapshot=snapshot.contribute,
    personal=snapshot.PERSONAL,
    reducers=snapshot.REDUCERS,
    direct_types=events.DIRECT_TYPES,
    engines=(
        EngineSpec("channels", _channels),
        # In this process only when configured so (else `livewall worker` runs it).
        EngineSpec("follow-up runner", _runner, runs=lambda settings: settings.followup_embedded),
    ),
    # A winner's prize claim makes them a contact (with consent, reachable).
    hooks=Hooks(on_intent=_wake, on_draw_claim=_prize_claimed),
)
