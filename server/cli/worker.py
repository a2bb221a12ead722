"""``livewall worker``: the follow-up loop in a process of its own, without HTTP."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from server.cli.parser import settings_from
from server.cli.serve import run
from server.config import Settings


def cmd_worker(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    run(_work(settings))
    return 0


async def _work(settings: Settings) -> None:
    import gc
    import signal

    from server.followup.channels.registry import close_all, make_channels
    from server.followup.runner import SANDBOX_PRELOAD, Runner, host_notifier
    from server.logs import configure
    from server.metrics import Metrics
    from server.realtime.backends import backend_from_url
    from server.realtime.hub import Hub
    from server.realtime.protocol import direct_frame
    from server.sandbox import Sandbox
    from server.storage import Database

    configure(settings.log_level, json=settings.log_json)
    assert settings.database_url
    db = Database(settings.database_url)
    await asyncio.to_thread(db.migrate)
    # With Redis, campaign progress reaches the hosts' consoles through the servers' shared hub.
    hub = Hub(backend_from_url(settings.redis_url, history=settings.history_events), Metrics())
    await hub.start()

    channels = make_channels(settings)

    async def show_inapp(room_id: str, viewer_ids: list[str], item: dict[str, Any]) -> None:
        for viewer_id in viewer_ids:  # reaches the servers' phones through Redis
            await hub.send_private(room_id, viewer_id, direct_frame("inbox", item))

    metrics = Metrics()
    # Templates render in worker processes under the same limits as in the server.
    sandbox = Sandbox.from_settings(settings, preload=SANDBOX_PRELOAD)
    runner = Runner(
        db,
        settings,
        channels,
        on_change=host_notifier(db, hub),
        on_inapp=show_inapp,
        metrics=metrics,
        sandbox=sandbox,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.start()
    # What importing and starting made lives as long as the process: out of the collector's sight,
    # a full collection no longer stops the loop for tens of milliseconds (in the middle of sends).
    gc.freeze()
    logging.getLogger("livewall").info("follow-up worker running")
    try:
        await stop.wait()
    finally:
        await runner.stop()
        await sandbox.close()
        await close_all(channels)
        await hub.stop()
        await db.dispose()
