"""Outbound URLs: which addresses are refused, the save-time check, and the client that connects only
to the address it checked (DNS rebinding), keeping the Host header and the TLS server name."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from server import netguard
from server.netguard import IPAddress, Refused
from tests.followup.channels.conftest import Remote, Reply, remote

__all__ = ["remote"]  # the local HTTP service fixture

TIMEOUT = httpx.Timeout(5.0)
LOOPBACK = netguard.allow_list(("127.0.0.1",))

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "0.0.0.0",
    "::",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.1.1",
    "fe80::1",
    "fc00::1",
    "100.64.0.1",
    "100.100.100.200",
    "168.63.129.16",
    "fd00:ec2::254",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local, CGNAT, multicast, reserved, unspecified, metadata and their
    IPv6 wrappings all have a reason to be refused."""
    assert netguard.address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "2002:808:808::"])
def test_public_addresses_pass(address: str) -> None:
    """Public addresses have no problem."""
    assert netguard.address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://[::1]:8080/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://0177.0.0.1/",
        "http://[::ffff:7f00:1]/",
        "ftp://example.com/",
        "javascript:alert(1)",
        "http:///nohost",
        "http://example.com:99999/",
    ],
)
def test_shape_refuses_local_and_odd_urls(url: str) -> None:
    """Local names, local literal addresses in any spelling and non-http(s) URLs are refused, no DNS."""
    with pytest.raises(Refused):
        netguard.check_shape(url, what="webhook_url")


def test_refusal_is_a_422_with_its_own_code() -> None:
    """A refusal is a clear 422 naming the field and the setting that can allow it."""
    with pytest.raises(Refused) as refused:
        netguard.check_shape("http://127.0.0.1:9/", what="webhook_url")
    assert (refused.value.http_status, refused.value.code) == (422, "url_not_allowed")
    assert refused.value.message.startswith("webhook_url: 127.0.0.1 is a loopback address")
    assert "LIVEWALL_OUTBOUND_ALLOW" in refused.value.message


def test_allow_list_opens_hosts_and_networks_but_never_metadata() -> None:
    """Listed names, addresses and networks pass; cloud metadata stays refused even when listed."""
    allow = netguard.allow_list(("sms-gw.internal", "10.0.0.0/8", "[::1]", "169.254.0.0/16"))
    assert netguard.check_shape("http://sms-gw.internal:8080/send", allow) == ("sms-gw.internal", 8080)
    assert netguard.address_problem(ipaddress.ip_address("10.2.3.4"), allow) is None
    assert netguard.address_problem(ipaddress.ip_address("::1"), allow) is None
    assert netguard.address_problem(ipaddress.ip_address("169.254.1.1"), allow) is None
    assert netguard.address_problem(ipaddress.ip_address("169.254.169.254"), allow) is not None
    assert netguard.address_problem(ipaddress.ip_address("192.168.1.1"), allow) is not None


def test_allow_list_refuses_garbage() -> None:
    """An allow-list entry that is neither a name, an address nor a network stops the start."""
    with pytest.raises(ValueError, match="LIVEWALL_OUTBOUND_ALLOW"):
        netguard.allow_list(("http://x/",))


def fake_dns(monkeypatch: pytest.MonkeyPatch, *answers: dict[str, list[str]]) -> list[str]:
    """Replace DNS: the n-th lookup of a name gets the n-th answer (the last one after that)."""
    asked: list[str] = []

    async def resolve(host: str, port: int, *, within_secs: float = 0) -> list[IPAddress]:
        asked.append(host)
        answer = answers[min(asked.count(host), len(answers)) - 1]
        if host not in answer:
            raise OSError(f"{host} does not resolve")
        return [ipaddress.ip_address(a) for a in answer[host]]

    monkeypatch.setattr(netguard, "resolve", resolve)
    return asked


async def test_save_check_resolves_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving to any private address is refused (the address itself is not revealed); a
    public one passes; one that does not resolve now is left to the send-time check."""
    fake_dns(monkeypatch, {"crm.corp.test": ["93.184.215.14", "10.0.0.5"], "shop.test": ["93.184.215.14"]})
    with pytest.raises(Refused) as refused:
        await netguard.check_url("https://crm.corp.test/hook", what="webhook_url")
    assert "crm.corp.test resolves to a private address" in refused.value.message
    assert "10.0.0.5" not in refused.value.message
    await netguard.check_url("https://shop.test/p/1", what="shop_url")
    await netguard.check_url("https://not-yet.test/p/1", what="shop_url")


async def test_resolution_runs_off_the_event_loop() -> None:
    """The real lookup goes through the loop's resolver thread and answers literal names."""
    assert await netguard.resolve("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]


def test_client_follows_no_redirects_and_no_proxy() -> None:
    """The guarded client never follows a redirect nor takes a proxy from the environment."""
    client = netguard.guarded_client(netguard.NOTHING_ALLOWED, timeout=TIMEOUT)
    assert client.follow_redirects is False and client.trust_env is False


async def test_client_refuses_loopback(remote: Remote) -> None:
    """Without an allow-list nothing reaches the loopback receiver."""
    async with netguard.guarded_client(netguard.NOTHING_ALLOWED, timeout=TIMEOUT) as client:
        with pytest.raises(Refused):
            await client.post(remote.url("/hook"), content=b"{}")
    assert remote.received == []


async def test_client_refuses_a_name_that_rebinds(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that was public when saved and answers loopback when sending is refused at send time:
    the address connected to is the one checked."""
    asked = fake_dns(monkeypatch, {"hooks.test": ["93.184.215.14"]}, {"hooks.test": ["127.0.0.1"]})
    port = httpx.URL(remote.base).port
    url = f"http://hooks.test:{port}/hook"
    await netguard.check_url(url, what="webhook_url")
    async with netguard.guarded_client(netguard.NOTHING_ALLOWED, timeout=TIMEOUT) as client:
        with pytest.raises(Refused, match=r"hooks\.test resolves to a loopback address"):
            await client.post(url, content=b"{}")
    assert asked == ["hooks.test", "hooks.test"] and remote.received == []


async def test_client_connects_to_the_checked_address_with_the_host_kept(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An allowed address is connected to by number; the request still names its host."""
    fake_dns(monkeypatch, {"hooks.test": ["127.0.0.1"]})
    port = httpx.URL(remote.base).port
    async with netguard.guarded_client(LOOPBACK, timeout=TIMEOUT) as client:
        response = await client.post(f"http://hooks.test:{port}/hook", content=b"{}")
    assert response.status_code == 200
    assert remote.received[0].headers["host"] == f"hooks.test:{port}"


async def test_redirect_is_returned_not_followed(remote: Remote) -> None:
    """A 3xx is handed back as is: its Location is never requested."""
    target = remote.url("/inside")
    url = remote.script("/hook", Reply(302, headers={"location": target}))
    async with netguard.guarded_client(LOOPBACK, timeout=TIMEOUT) as client:
        response = await client.post(url, content=b"{}")
    assert response.status_code == 302
    assert [r.path for r in remote.received] == ["/hook"]


async def test_no_answer_is_a_connection_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that does not resolve when sending is a connection error (retried later)."""
    fake_dns(monkeypatch, {})
    async with netguard.guarded_client(LOOPBACK, timeout=TIMEOUT) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post("http://gone.test/hook", content=b"{}")


def _certificate(folder: Path, name: str) -> tuple[Path, Path, str]:
    """A self-signed certificate valid for ``name`` only (no address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "cert.pem", folder / "key.pem", pem.decode()


async def _https_server(cert: Path, key: Path) -> tuple[int, Callable[[], asyncio.Future[None]]]:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.headers["host"])

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    config = uvicorn.Config(
        Starlette(routes=[Route("/", hello)]),
        lifespan="off",
        log_level="warning",
        loop="none",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))

    def stop() -> asyncio.Future[None]:
        server.should_exit = True
        return task

    return int(sock.getsockname()[1]), stop


@pytest.fixture
async def tls_site(tmp_path: Path) -> AsyncIterator[tuple[int, str]]:
    cert, key, pem = _certificate(tmp_path, "hooks.test")
    port, stop = await _https_server(cert, key)
    try:
        yield port, pem
    finally:
        await asyncio.wait_for(stop(), 10)


async def test_tls_verifies_the_host_name_not_the_address(
    tls_site: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over https the pinned connection sends the URL's name as TLS server name and verifies the
    certificate against it (the certificate names hooks.test only, not 127.0.0.1)."""
    port, pem = tls_site
    fake_dns(monkeypatch, {"hooks.test": ["127.0.0.1"]})
    trust = ssl.create_default_context(cadata=pem)
    async with netguard.guarded_client(LOOPBACK, timeout=TIMEOUT, verify=trust) as client:
        response = await client.get(f"https://hooks.test:{port}/")
    assert response.text == f"hooks.test:{port}"
