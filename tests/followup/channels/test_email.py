"""Email channel against a real SMTP server (aiosmtpd): TLS modes, AUTH, headers and reply mapping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from server.config import Settings
from server.followup.channels import Outgoing, Permanent, Retryable
from server.followup.channels.email import EmailChannel, build_email, message_id, parse_smtp_url
from tests.followup.channels.conftest import Smtp, TlsFiles
from tests.helpers import free_port

USER = "shop@example.com"
PASSWORD = "p@ss:w/rd%"


def settings(tmp_path: Path, smtp_url: str) -> Settings:
    return Settings(data_dir=tmp_path, smtp_url=smtp_url, mail_from="Shop <news@shop.example>")


def outgoing(to: str = "viewer@example.com", **overrides: object) -> Outgoing:
    values: dict[str, object] = {
        "idem_key": "m-42",
        "to": to,
        "subject": "Still thinking about it?",
        "text": "Your cart is waiting.",
        "marketing": False,
    }
    values.update(overrides)
    return Outgoing(**values)  # type: ignore[arg-type]


def authenticator(
    server: object, session: object, envelope: object, mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd replies 535


async def test_plain_delivery(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """tls=none submits in the clear: From, To, Subject, text and HTML parts arrive."""
    smtp = smtp_server()
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    sent = await channel.send(outgoing(html="<p>Your cart is waiting.</p>"))
    [got] = smtp.sink.delivered
    assert got.mail_from == "news@shop.example"
    assert got.rcpt_tos == ["viewer@example.com"]
    assert got.message["Subject"] == "Still thinking about it?"
    assert got.message["To"] == "viewer@example.com"
    assert not got.tls
    assert got.message.get_body(("plain",)).get_content().strip() == "Your cart is waiting."  # type: ignore[union-attr]
    assert got.message.get_body(("html",)).get_content().strip() == "<p>Your cart is waiting.</p>"  # type: ignore[union-attr]
    assert sent.provider_id == got.message["Message-ID"] == "<m-42@shop.example>"


async def test_message_id_is_the_same_on_retry(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """Two sends of one message carry the same Message-ID, so inboxes can drop the repeat."""
    smtp = smtp_server()
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    await channel.send(outgoing())
    await channel.send(outgoing())
    first, second = smtp.sink.delivered
    assert first.message["Message-ID"] == second.message["Message-ID"]


async def test_marketing_mail_has_one_click_unsubscribe(
    tmp_path: Path, smtp_server: Callable[..., Smtp]
) -> None:
    """Marketing mail carries List-Unsubscribe and List-Unsubscribe-Post (RFC 8058)."""
    smtp = smtp_server()
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    await channel.send(outgoing(marketing=True, unsubscribe_url="https://shop.example/u/abc"))
    [got] = smtp.sink.delivered
    assert got.message["List-Unsubscribe"] == "<https://shop.example/u/abc>"
    assert got.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_transactional_mail_has_no_unsubscribe(
    tmp_path: Path, smtp_server: Callable[..., Smtp]
) -> None:
    """Transactional mail carries no List-Unsubscribe, even with a URL at hand."""
    smtp = smtp_server()
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    await channel.send(outgoing(marketing=False, unsubscribe_url="https://shop.example/u/abc"))
    [got] = smtp.sink.delivered
    assert "List-Unsubscribe" not in got.message
    assert "List-Unsubscribe-Post" not in got.message


async def test_starttls_with_auth(
    tmp_path: Path, smtp_server: Callable[..., Smtp], tls_files: TlsFiles
) -> None:
    """smtp:// upgrades with STARTTLS, then logs in with the percent-decoded credentials."""
    smtp = smtp_server(
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    url = f"smtp://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{smtp.port}"
    channel = EmailChannel(settings(tmp_path, url), tls_context=tls_files.client_context())
    await channel.send(outgoing())
    [got] = smtp.sink.delivered
    assert got.tls
    assert got.authenticated


async def test_wrong_password_is_permanent(
    tmp_path: Path, smtp_server: Callable[..., Smtp], tls_files: TlsFiles
) -> None:
    """A refused login (535) is a permanent failure, not a bounce of the recipient."""
    smtp = smtp_server(
        tls_context=tls_files.server_context(), authenticator=authenticator, auth_required=True
    )
    url = f"smtp://{quote(USER, safe='')}:wrong@127.0.0.1:{smtp.port}"
    channel = EmailChannel(settings(tmp_path, url), tls_context=tls_files.client_context())
    with pytest.raises(Permanent) as refused:
        await channel.send(outgoing())
    assert "535" in refused.value.reason
    assert not refused.value.gone


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_auth_without_tls(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """tls=none with credentials logs in over the plain connection (a relay that allows it)."""
    smtp = smtp_server(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    url = f"smtp://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{smtp.port}?tls=none"
    await EmailChannel(settings(tmp_path, url)).send(outgoing())
    [got] = smtp.sink.delivered
    assert got.authenticated
    assert not got.tls


async def test_implicit_tls(tmp_path: Path, smtp_server: Callable[..., Smtp], tls_files: TlsFiles) -> None:
    """smtps:// speaks TLS from the first byte."""
    smtp = smtp_server(ssl_context=tls_files.server_context())
    channel = EmailChannel(
        settings(tmp_path, f"smtps://127.0.0.1:{smtp.port}"), tls_context=tls_files.client_context()
    )
    await channel.send(outgoing())
    [got] = smtp.sink.delivered
    assert got.tls


async def test_certificates_are_verified_by_default(
    tmp_path: Path, smtp_server: Callable[..., Smtp], tls_files: TlsFiles
) -> None:
    """Without a test trust anchor a self-signed server is refused, and nothing is sent."""
    smtp = smtp_server(tls_context=tls_files.server_context(), require_starttls=True)
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}"))
    with pytest.raises(Retryable):
        await channel.send(outgoing())
    assert smtp.sink.delivered == []


async def test_temporary_refusal_is_retryable(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """A 4xx reply (greylisting, a full queue) is retried."""
    smtp = smtp_server()
    smtp.sink.refuse_rcpt["later@example.com"] = "451 4.7.1 Greylisted, try again later"
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    with pytest.raises(Retryable) as refused:
        await channel.send(outgoing("later@example.com"))
    assert "451" in refused.value.reason


async def test_unknown_mailbox_is_gone(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """550 5.1.1 for the recipient is a hard bounce: permanent and gone."""
    smtp = smtp_server()
    smtp.sink.refuse_rcpt["nobody@example.com"] = "550 5.1.1 No such user"
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    with pytest.raises(Permanent) as refused:
        await channel.send(outgoing("nobody@example.com"))
    assert refused.value.gone


async def test_full_mailbox_is_not_gone(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """552 5.2.2 (mailbox full) is permanent for this message but the address still exists."""
    smtp = smtp_server()
    smtp.sink.refuse_rcpt["full@example.com"] = "552 5.2.2 Mailbox full"
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    with pytest.raises(Permanent) as refused:
        await channel.send(outgoing("full@example.com"))
    assert not refused.value.gone


async def test_policy_refusal_of_recipient_is_not_gone(
    tmp_path: Path, smtp_server: Callable[..., Smtp]
) -> None:
    """550 with 5.7.1 (refused by policy) is not a hard bounce: the mailbox exists."""
    smtp = smtp_server()
    smtp.sink.refuse_rcpt["strict@example.com"] = "550 5.7.1 Message refused by policy"
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    with pytest.raises(Permanent) as refused:
        await channel.send(outgoing("strict@example.com"))
    assert not refused.value.gone


async def test_refused_content_is_permanent(tmp_path: Path, smtp_server: Callable[..., Smtp]) -> None:
    """A 5xx after DATA refuses this message only; the recipient is not gone."""
    smtp = smtp_server()
    smtp.sink.refuse_data = "554 5.6.0 Content rejected"
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{smtp.port}?tls=none"))
    with pytest.raises(Permanent) as refused:
        await channel.send(outgoing())
    assert not refused.value.gone


async def test_server_down_is_retryable(tmp_path: Path) -> None:
    """A refused connection is retried later."""
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{free_port()}?tls=none"))
    with pytest.raises(Retryable):
        await channel.send(outgoing())


async def test_header_injection_is_refused(tmp_path: Path) -> None:
    """A line break in a header value is refused before anything is sent."""
    channel = EmailChannel(settings(tmp_path, f"smtp://127.0.0.1:{free_port()}?tls=none"))
    with pytest.raises(Permanent):
        await channel.send(outgoing(subject="Hi\r\nBcc: everyone@example.com"))


def test_smtp_url_defaults() -> None:
    """smtp:// is STARTTLS on 587, ?tls=none is plain on 25, smtps:// is implicit TLS on 465."""
    assert (parse_smtp_url("smtp://mail.example").tls, parse_smtp_url("smtp://mail.example").port) == (
        "starttls",
        587,
    )
    assert parse_smtp_url("smtp://mail.example?tls=none").port == 25
    assert parse_smtp_url("smtps://mail.example").tls == "implicit"
    assert parse_smtp_url("smtps://mail.example").port == 465
    assert parse_smtp_url("smtp://mail.example:2525?tls=none").port == 2525


def test_smtp_url_credentials_are_percent_decoded() -> None:
    """user and password are percent-decoded."""
    server = parse_smtp_url("smtp://a%40b.example:p%40ss%3Aword@mail.example")
    assert (server.username, server.password) == ("a@b.example", "p@ss:word")


@pytest.mark.parametrize(
    "url",
    ["http://mail.example", "smtp://", "smtp://mail.example?tls=maybe", "smtps://mail.example?tls=none"],
)
def test_bad_smtp_url(url: str) -> None:
    """Unknown schemes, missing hosts and contradictory TLS modes are refused."""
    with pytest.raises(ValueError):
        parse_smtp_url(url)


def test_message_id_hashes_unsafe_keys() -> None:
    """A key that is not a dot-atom is hashed; the same key always gives the same id."""
    unsafe = message_id("journey 7/step <2>", "Shop <news@shop.example>")
    assert unsafe == message_id("journey 7/step <2>", "Shop <news@shop.example>")
    assert unsafe.startswith("<") and unsafe.endswith("@shop.example>")
    assert " " not in unsafe and "/" not in unsafe[1:-1].split("@")[0]


def test_extra_headers_replace_defaults() -> None:
    """Headers given with the message replace the channel's own of the same name."""
    mail = build_email(outgoing(headers={"Reply-To": "help@shop.example"}), mail_from="news@shop.example")
    assert mail["Reply-To"] == "help@shop.example"
