"""The channels this process can deliver on, built from settings, and their shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from server.config import Settings
from server.followup.channels import Channel
from server.followup.channels.email import EmailChannel
from server.followup.channels.inapp import InAppChannel
from server.followup.channels.push import PushChannel
from server.followup.channels.sms import SmsChannel
from server.followup.channels.webhook import WebhookChannel

log = logging.getLogger("livewall.followup")


def make_channels(settings: Settings) -> dict[str, Channel]:
    """Channels by name: email and SMS only when configured; push, webhook and in-app always."""
    channels: list[Channel] = []
    if settings.smtp_url:
        channels.append(EmailChannel(settings))
    if settings.sms_url:
        channels.append(SmsChannel(settings))
    channels += [PushChannel(settings), WebhookChannel(settings), InAppChannel()]
    return {channel.name: channel for channel in channels}


async def close_all(channels: Mapping[str, Channel]) -> None:
    """Close every channel; one failing to close does not keep the others open."""
    results = await asyncio.gather(*(c.close() for c in channels.values()), return_exceptions=True)
    for name, result in zip(channels, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("closing the %s channel failed: %r", name, result)
