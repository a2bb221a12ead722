"""Channel registry: which channels a configuration gets, and closing them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from server.followup.channels import Outgoing, Sent
from server.followup.channels.registry import close_all, make_channels


async def test_defaults_have_push_webhook_inapp(tmp_path: Path) -> None:
    """Without SMTP or SMS settings only push, webhook and in-app exist."""
    channels = make_channels(Settings(data_dir=tmp_path))
    assert sorted(channels) == ["inapp", "push", "webhook"]
    await close_all(channels)


async def test_configured_channels_are_added(tmp_path: Path) -> None:
    """smtp_url adds email and sms_url adds SMS; each is keyed by its own name."""
    settings = Settings(data_dir=tmp_path, smtp_url="smtp://mail.example", sms_url="https://sms.example/send")
    channels = make_channels(settings)
    assert sorted(channels) == ["email", "inapp", "push", "sms", "webhook"]
    assert all(channel.name == name for name, channel in channels.items())
    await close_all(channels)


def test_bad_smtp_url_fails_at_start(tmp_path: Path) -> None:
    """A malformed smtp_url is refused when the channels are built, not at the first message."""
    with pytest.raises(ValueError):
        make_channels(Settings(data_dir=tmp_path, smtp_url="mail.example:25"))


class Failing:
    name = "failing"

    async def send(self, message: Outgoing) -> Sent:
        return Sent()

    async def close(self) -> None:
        raise RuntimeError("boom")


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.closed = False

    async def send(self, message: Outgoing) -> Sent:
        return Sent()

    async def close(self) -> None:
        self.closed = True


async def test_close_all_survives_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """One channel failing to close does not keep the others open; the failure is logged."""
    recording = Recording()
    await close_all({"failing": Failing(), "recording": recording})
    assert recording.closed
    assert "failing" in caplog.text
