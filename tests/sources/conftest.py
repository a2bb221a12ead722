"""The local SMTP server of the follow-up tests, for the UTM links of follow-up emails."""

from tests.followup.channels.conftest import smtp_server

__all__ = ["smtp_server"]
