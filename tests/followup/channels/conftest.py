"""Fixtures: a scriptable local HTTP service (uvicorn), a local SMTP server (aiosmtpd), a self-signed cert."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.helpers import free_port

# The local services below listen on loopback, which outbound requests may not reach unless the
# operator allows it (server/netguard.py): tests that send to them allow it, as an operator would.
LOOPBACK_ALLOWED = ("127.0.0.1",)


@dataclass
class Reply:
    """One scripted answer; ``hang`` holds the request open until the service stops."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Remote:
    """A local HTTP service: answers each path with its scripted replies in order, then 200."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.received: list[Received] = []
        self.released = asyncio.Event()
        self._replies: dict[str, deque[Reply]] = {}

    def url(self, path: str) -> str:
        return self.base + path

    def script(self, path: str, *replies: Reply) -> str:
        self._replies.setdefault(path, deque()).extend(replies)
        return self.url(path)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(Received(request.url.path, dict(request.headers), body))
        queue = self._replies.get(request.url.path)
        reply = queue.popleft() if queue else Reply()
        if reply.hang:
            await self.released.wait()
        return Response(reply.body, status_code=reply.status, headers=reply.headers)


@pytest.fixture
async def remote() -> AsyncIterator[Remote]:
    """A real HTTP server on a free port; the socket listens before the fixture returns."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    remote = Remote(f"http://127.0.0.1:{sock.getsockname()[1]}")
    app = Starlette(routes=[Route("/{path:path}", remote.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", loop="none"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield remote
    finally:
        remote.released.set()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@pytest.fixture
def dead_url() -> str:
    """An address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/nothing"


@dataclass
class TlsFiles:
    cert: Path
    key: Path
    pem: bytes

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """Verifies as in production, but trusts this one self-signed certificate."""
        return ssl.create_default_context(cadata=self.pem.decode())


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return TlsFiles(folder / "cert.pem", folder / "key.pem", pem)


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    authenticated: bool


class Sink:
    """An aiosmtpd handler that keeps what it accepts and refuses what the test says."""

    def __init__(self) -> None:
        self.delivered: list[Delivered] = []
        self.refuse_rcpt: dict[str, str] = {}
        self.refuse_data: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_data:
            return self.refuse_data
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.delivered.append(
            Delivered(envelope.mail_from, list(envelope.rcpt_tos), message, tls, bool(session.authenticated))
        )
        return "250 2.0.0 Ok: queued as 4AB1"


@dataclass
class Smtp:
    sink: Sink
    port: int


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Smtp]]:
    """Start aiosmtpd (in its own thread) with the given SMTP options; stopped after the test."""
    started: list[Controller] = []

    def start(**options: Any) -> Smtp:
        sink = Sink()
        controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return Smtp(sink, controller.port)

    yield start
    for controller in started:
        controller.stop()
