"""The channel fixtures (local SMTP and HTTP services) for every follow-up test."""

from tests.followup.channels.conftest import dead_url, remote, smtp_server, tls_files

__all__ = ["dead_url", "remote", "smtp_server", "tls_files"]
