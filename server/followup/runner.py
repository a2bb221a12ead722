"""The follow-up loop: route events, advance journeys, start campaigns, deliver; repeat.

It runs inside the server process by default (``followup_embedded``) and in ``livewall worker``
processes; any number of them share the work through the database. An event recorded in this
process wakes the loop at once; otherwise it looks every ``followup_tick_secs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import col, select

from server.config import Settings
from server.followup import campaigns, delivery, instances, journeys, reach, wire
from server.followup.channels import Channel
from server.followup.events import FollowupChanged
from server.followup.links import Links
from server.metrics import Metrics
from server.sandbox import Sandbox
from server.storage import Database
from server.storage.followup import Alert, Campaign, Message

if TYPE_CHECKING:
    from server.realtime.hub import Hub

log = logging.getLogger("livewall.followup")

ALERTS_SHOWN = 20
# After a pass, the next one woken by an event waits at least this long after the previous one ended.
WAKE_GAP_SECS = 0.25
# While a claim rush runs in this process, passes wait, up to this long.
RUSH_DEFER_SECS = 5.0
CAMPAIGNS_SHOWN = 20
# On stop, the pass under way may finish its sends (and record them) for this long before it is
# cancelled: a send cancelled after the provider accepted it would be re-sent as uncertain.
DRAIN_SECS = 10.0
# What a worker process of the sandbox imports before its first job: the message renderer.
SANDBOX_PRELOAD = ("server.followup.render",)


async def summary(db: Database, room_id: str) -> dict[str, Any]:
    """What the host console shows live: campaigns with counts by status, dead letters, uncertain
    re-sends, alerts."""
    async with db.session() as session:
        campaigns = (
            await session.exec(
                select(Campaign)
                .where(Campaign.room_id == room_id)
                .order_by(col(Campaign.id).desc())
                .limit(CAMPAIGNS_SHOWN)
            )
        ).all()
        counts: dict[int, dict[str, int]] = {}
        if campaigns:
            rows = await session.exec(
                select(Message.campaign_id, Message.status, func.count())
                .where(col(Message.campaign_id).in_([c.id for c in campaigns]))
                .group_by(col(Message.campaign_id), col(Message.status))
            )
            for campaign_id, status, n in rows.all():
                if campaign_id is not None:
                    counts.setdefault(campaign_id, {})[status] = int(n)
        dead = (
            await session.exec(
                select(func.count())
                .select_from(Message)
                .where(Message.room_id == room_id, Message.status == "dead")
            )
        ).one()
        uncertain = (
            await session.exec(
                select(func.coalesce(func.sum(Message.uncertain_resends), 0)).where(
                    Message.room_id == room_id
                )
            )
        ).one()
        alerts = (
            await session.exec(
                select(Alert)
                .where(Alert.room_id == room_id)
                .order_by(col(Alert.id).desc())
                .limit(ALERTS_SHOWN)
            )
        ).all()
    return {
        "campaigns": [wire.campaign_shape(c, counts.get(c.id or 0, {})) for c in campaigns],
        "dead": int(dead),
        # Sends repeated (with the same idempotency key) because a worker stopped mid-send.
        "uncertain_resend": int(uncertain),
        "alerts": [wire.alert_shape(a) for a in alerts],
    }


def host_notifier(db: Database, hub: Hub) -> Callable[[str], Awaitable[None]]:
    """The ``on_change`` that sends a room's hosts the summary when it differs from the last sent.

    One at a time: two passes reading concurrently could otherwise publish an older read after a
    newer one, and the dedup would then keep the hosts on the old figures (a campaign stuck at
    "sending")."""
    seen: dict[str, dict[str, Any]] = {}
    lock = asyncio.Lock()

    async def on_change(room_id: str) -> None:
        async with lock:
            current = await summary(db, room_id)
            if seen.get(room_id) != current:
                seen[room_id] = current
                await hub.publish(room_id, FollowupChanged(**current))

    return on_change


class Runner:
    """Owns the loop; ``wake()`` after recording an event makes it look at once."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        channels: dict[str, Channel],
        *,
        on_change: Callable[[str], Awaitable[None]] | None = None,
        on_inapp: Callable[[str, list[str], dict[str, Any]], Awaitable[None]] | None = None,
        rushing: Callable[[], bool] | None = None,
        metrics: Metrics | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        assert settings.secret_key is not None
        # The app shares its sandbox; a runner given none has its own, and stops it with itself.
        self._own_sandbox = sandbox is None
        self.sandbox = sandbox or Sandbox.from_settings(settings, preload=SANDBOX_PRELOAD)
        self.rushing = rushing  # true while this process serves a claim rush
        self.db = db
        self.settings = settings
        self.channels = channels
        self.on_change = on_change
        self.links = Links(settings.secret_key, settings.base_url)
        self.deliverer = delivery.Deliverer(
            db,
            channels,
            self.links,
            sandbox=self.sandbox,
            time_scale=settings.followup_time_scale,
            lease_ms=int(settings.followup_lease_secs * 1000),
            on_alert=self._alert,
            on_inapp=on_inapp,
            uncertain_grace_ms=int(settings.followup_uncertain_grace_secs * 1000),
            on_uncertain=metrics.uncertain_resend if metrics is not None else None,
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.process_id = uuid.uuid4().hex  # how this process announces its channels (reach.py)
        self._announced = 0.0  # monotonic seconds of the last announcement
        self.rounds = 0  # completed passes, for tests that wait for the loop to go round

    def wake(self) -> None:
        self._wake.set()

    async def _alert(self, room_id: str, _text: str) -> None:
        await self.changed(room_id)

    async def run_once(self) -> int:
        """One pass; the number of things done (0 = idle)."""
        done = await journeys.route_events(self.db)
        done += await journeys.release_held(self.db)
        done += await instances.advance_instances(self.db, time_scale=self.settings.followup_time_scale)
        started = await campaigns.start_campaigns(self.db)
        handled = await self.deliverer.run_once()
        if started or handled:
            await campaigns.finish_campaigns(self.db)
            # Campaign progress, dead letters and alerts of the rooms touched reach their hosts.
            for room_id in {m.room_id for m in handled} | await self._rooms_with_campaigns():
                await self.changed(room_id)
        self.rounds += 1
        return done + started + len(handled)

    async def changed(self, room_id: str) -> None:
        """Tell the room's hosts (if anything they see changed; the callback compares)."""
        if self.on_change is not None:
            await self.on_change(room_id)

    async def _rooms_with_campaigns(self) -> set[str]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Campaign.room_id).where(col(Campaign.status).in_(["scheduled", "sending"])).distinct()
            )
            return set(rows.all())

    async def start(self) -> None:
        self._stopping = False
        # Announced before the first request is served: phones are offered these channels at once.
        await self._announce()
        self._task = asyncio.create_task(self._run(), name="livewall-followup")

    async def stop(self) -> None:
        """Let the pass under way finish (at most DRAIN_SECS), start no other, then stop."""
        task, self._task = self._task, None
        if self._own_sandbox:
            # After the pass: its renders need the workers. Stopped even if this runner never started
            # (a test's run_once may have started workers).
            await self._stop_loop(task)
            await self.sandbox.close()
            return
        await self._stop_loop(task)

    async def _stop_loop(self, task: asyncio.Task[None] | None) -> None:
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        await asyncio.wait({task}, timeout=DRAIN_SECS)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await reach.forget(self.db, self.process_id)
        except Exception:  # the database may be gone already; the record then expires by itself
            log.warning("could not withdraw this process's follow-up channels", exc_info=True)

    async def _announce(self) -> None:
        await reach.announce(self.db, self.process_id, self.channels)
        self._announced = time.monotonic()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                if time.monotonic() - self._announced >= reach.ANNOUNCE_MS / 1000:
                    await self._announce()
                busy = await self.run_once()
            except Exception:
                log.exception("follow-up pass failed")
                busy = 0
            if busy:
                await asyncio.sleep(0)  # more may be due: go again, letting others run first
                continue
            idle_since = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.followup_tick_secs)
            # Woken by an event: during a burst (a claim rush records one per batch) the events
            # of a short while are taken up together, not one pass each.
            gap = WAKE_GAP_SECS - (time.monotonic() - idle_since)
            if gap > 0 and self._wake.is_set():
                await asyncio.sleep(gap)
            # A claim rush has the CPU: follow-up (reminders minutes or hours later) waits it out.
            waited = 0.0
            while self.rushing is not None and self.rushing() and waited < RUSH_DEFER_SECS:
                await asyncio.sleep(WAKE_GAP_SECS)
                waited += WAKE_GAP_SECS
            self._wake.clear()
