"""Settings, read from flags or ``LIVEWALL_*`` environment variables.

Constants carry their unit in the name and the reason in a comment.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

# Client heartbeat: phones on mobile networks lose idle TCP flows after ~30-60 s of silence, so the
# browser pings the server well inside that window and treats a missing pong as a dead connection.
HEARTBEAT_SECS = 25
# The server's own WebSocket pings only find dead peers (the clients' heartbeat keeps NATs and
# proxies open): one every minute, not uvicorn's 20 s, as each costs CPU times the audience.
WS_PING_SECS = 60.0
# Frames from clients are small JSON commands; anything bigger is abuse or a bug (issue: 16 KiB default).
MAX_FRAME_BYTES = 16 * 1024
# Events held per room and audience for resume. At 10 broadcasts/s this covers ~100 s of disconnection,
# longer than any phone's reconnect backoff; older resumes fall back to a flagged snapshot.
HISTORY_EVENTS = 1000
# A connection whose unsent bytes exceed this is too slow to follow the room; it is cut (close 4008)
# instead of buffering without bound or slowing others.
SEND_BUFFER_LIMIT_BYTES = 512 * 1024
# Inbound limits per connection, counted on raw frames before they are parsed
# (server/realtime/inbound.py): a burst of 50 frames, refilled at 10 per second. A phone that comes
# back from a stall sends what it queued at once (a few comments, votes, a resume); more than the
# burst is read at the rate, never refused. Frames are small JSON commands: 64 KiB at once and 32 KiB
# a second leave room for frames of the largest size (MAX_FRAME_BYTES) while a client sending big
# frames fast is held to a trickle.
INBOUND_BURST = 50
INBOUND_RATE_PER_SEC = 10.0
INBOUND_BURST_BYTES = 64 * 1024
INBOUND_BYTES_PER_SEC = 32 * 1024
# A client held back by those limits for this long without once catching up is flooding: closed 4029.
# An innocent burst drains in (burst beyond INBOUND_BURST) / INBOUND_RATE_PER_SEC: 10 s is 100 frames.
INBOUND_FLOOD_CLOSE_SECS = 10.0
# Under an ASGI server without Livewall's protocol (no raw frames to count), messages over the limits
# are refused with rate_limited, and a client refused this many times in a row is closed 4029.
INBOUND_STRIKES_BEFORE_CLOSE = 20
# WebSocket connections per client address (the proxy's forwarded address behind a trusted proxy),
# counted from the handshake: a venue's phones can share one public address behind its Wi-Fi's NAT,
# so this only stops one machine from holding thousands of sockets. Refused with HTTP 429.
MAX_CONNS_PER_ADDRESS = 2000
# Connections per identity (a viewer, a host login, a room's screen link): a few tabs and devices,
# and a reconnecting phone whose old connection is not yet known to be dead. The oldest is closed
# (4009) to make room, so a reconnect is never locked out by its own stale connection.
MAX_CONNS_PER_IDENTITY = 8
# HTTP: a request head (request line and headers) must arrive within this long of the connection
# opening or of the request's first byte, and be at most HTTP_MAX_HEAD_BYTES; a body within
# HTTP_BODY_TIMEOUT_SECS of its head (the largest upload, 512 KiB, needs ~17 KiB/s). A client that
# stalls is disconnected instead of holding a socket forever (uvicorn has no such deadline).
HTTP_HEAD_TIMEOUT_SECS = 10.0
HTTP_MAX_HEAD_BYTES = 64 * 1024
HTTP_BODY_TIMEOUT_SECS = 30.0
# Presence (viewer count) is published at most this often, so a join storm is one frame per tick.
PRESENCE_TICK_SECS = 1.0
# Fan-out ticks (server/realtime/hub.py): while writing fan-outs takes at least FANOUT_COALESCE_BUSY of
# the loop's time, an audience of FANOUT_COALESCE_MIN_CONNS or more is written at most once per
# FANOUT_COALESCE_SECS, several events sharing each connection's write. Each write is ~9 us of system
# time here whatever it carries: 10 events a second to 10,000 phones saturate the core written one by
# one; 0.15 s measured best there (bench/README.md). 5,000 phones at 10/s (~45 % writing) and
# small audiences (host consoles, screens) are written at once.
FANOUT_COALESCE_SECS = 0.15
FANOUT_COALESCE_MIN_CONNS = 1000
FANOUT_COALESCE_BUSY = 0.6
# While the loop is starved of CPU (it waited for a CPU for 15 % or more of the time it spent writing:
# the cores are shared, say with a second server process and the phones' clients), ticks are this long.
# 20,000 phones on two processes at 10 events/s: p99 406-616 ms at 0.15 s, 273-355 ms at 0.2 s
# (bench/README.md).
FANOUT_COALESCE_STARVED_SECS = 0.2
# How long an unauthenticated socket may stay silent before sending hello.
HELLO_TIMEOUT_SECS = 10.0
# A step of a shutdown (stopping a ticker, the hub, the database) still running after this long is
# named in the log.
SHUTDOWN_STEP_SECS = 3.0
# Follow-up workers look for due journey steps and messages this often (and at once when woken).
FOLLOWUP_TICK_SECS = 1.0
FOLLOWUP_LEASE_SECS = 120.0
# A message whose worker stopped while an SMTP server had it may or may not have been accepted, and
# SMTP cannot recognise a repeat: it waits this long before going again (once), so that a worker that
# was only slow can still record its send (docs/followup.md#exactly-once).
FOLLOWUP_UNCERTAIN_GRACE_SECS = 60.0
# Untrusted and CPU-heavy work (a marketer's message template, a draw's recomputation) runs in worker
# processes (server/sandbox.py). A message renders in milliseconds; 2 s of CPU is a template that
# does something no message needs, and still a prompt answer to the host who previews it.
SANDBOX_DEADLINE_SECS = 2.0
# Memory a job may take on top of the worker's own (~80 MB after start-up): a 50,000-character
# message needs a few MB; a template doubling a text runs into this within a fraction of a second.
SANDBOX_MEMORY_MB = 256
# The longest rendered message (subject and text) and job result, in characters: far beyond any
# email, SMS or push message; bigger intermediate texts in a template are refused as well.
SANDBOX_OUTPUT_CHARS = 50_000
# Worker processes at most (started when first needed), each ~80 MB: one per core of a small host.
SANDBOX_WORKERS = 2
HOST_SESSION_SECS = 7 * 24 * 3600
# The studio cookie's signature outlives any session; the stored session decides (server/accounts/rules.py).
STUDIO_SESSION_SECS = 60 * 24 * 3600
VIEWER_TOKEN_SECS = 90 * 24 * 3600


def _env(name: str) -> str | None:
    value = os.environ.get(f"LIVEWALL_{name.upper()}")
    return value if value not in (None, "") else None


@dataclass(frozen=True)
class Settings:
    """Everything a server process needs; ``Settings.from_env`` fills it from ``LIVEWALL_*``."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = field(default_factory=lambda: Path("livewall-data"))
    database_url: str | None = None  # default: sqlite file in data_dir
    redis_url: str | None = None  # default: in-process hub
    secret_key: str | None = None  # default: generated once and kept in data_dir
    public_url: str | None = None  # base URL phones use (QR code); default: the request's own
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "info"
    log_json: bool = True
    max_frame_bytes: int = MAX_FRAME_BYTES
    history_events: int = HISTORY_EVENTS
    send_buffer_limit_bytes: int = SEND_BUFFER_LIMIT_BYTES
    inbound_burst: int = INBOUND_BURST  # frames
    inbound_rate_per_sec: float = INBOUND_RATE_PER_SEC  # frames
    inbound_burst_bytes: int = INBOUND_BURST_BYTES
    inbound_bytes_per_sec: float = INBOUND_BYTES_PER_SEC
    inbound_flood_close_secs: float = INBOUND_FLOOD_CLOSE_SECS
    max_conns_per_address: int = MAX_CONNS_PER_ADDRESS
    max_conns_per_identity: int = MAX_CONNS_PER_IDENTITY
    http_head_timeout_secs: float = HTTP_HEAD_TIMEOUT_SECS
    http_max_head_bytes: int = HTTP_MAX_HEAD_BYTES
    http_body_timeout_secs: float = HTTP_BODY_TIMEOUT_SECS
    presence_tick_secs: float = PRESENCE_TICK_SECS
    fanout_coalesce_secs: float = FANOUT_COALESCE_SECS
    fanout_coalesce_min_conns: int = FANOUT_COALESCE_MIN_CONNS
    fanout_coalesce_busy: float = FANOUT_COALESCE_BUSY
    fanout_coalesce_starved_secs: float = FANOUT_COALESCE_STARVED_SECS
    heartbeat_secs: int = HEARTBEAT_SECS
    ws_ping_secs: float = WS_PING_SECS
    # Cookies marked Secure; always on when the public URL is https (__post_init__).
    secure_cookies: bool = False
    # Strict-Transport-Security on every response, sent only when the public URL is https.
    hsts: bool = True
    # Who may frame the big screen (a CSP frame-ancestors source list; OBS and dashboards embed it).
    # The console, login and phone pages may never be framed.
    screen_frame_ancestors: str = "*"
    # Hosts, addresses and networks (comma-separated) that webhooks, the SMS gateway and shop links may
    # use although they are not public internet addresses (server/netguard.py).
    outbound_allow: tuple[str, ...] = ()
    # Move settled connections' objects out of the cycle collector's way (server/realtime/gcpolicy.py).
    gc_freeze: bool = True
    # Follow-up messaging (docs/followup.md). Channels without settings are off: their messages are
    # recorded as skipped, never lost silently.
    smtp_url: str | None = None  # smtp://user:pass@host:587?tls=starttls | smtps://...:465 | ?tls=none
    mail_from: str = "Livewall <noreply@localhost>"
    sms_url: str | None = None  # HTTP SMS gateway endpoint (docs/followup.md#sms)
    sms_token: str | None = None  # bearer token for the SMS gateway, also checks inbound STOP calls
    vapid_private_key: str | None = None  # PEM file; default: generated once and kept in data_dir
    vapid_subject: str = "mailto:noreply@localhost"
    followup_embedded: bool = True  # deliver in the server process; off when `livewall worker` runs
    followup_tick_secs: float = FOLLOWUP_TICK_SECS
    followup_time_scale: float = 1.0  # multiplies journey waits and retry delays; tests compress time
    # A worker holds a message this long while sending; one killed mid-send frees it after that. It
    # must exceed the slowest channel's timeout, or a slow send could be taken up a second time.
    followup_lease_secs: float = FOLLOWUP_LEASE_SECS
    followup_uncertain_grace_secs: float = FOLLOWUP_UNCERTAIN_GRACE_SECS
    # Limits of untrusted and CPU-heavy jobs, each in a worker process (docs/security.md#limits).
    sandbox_deadline_secs: float = SANDBOX_DEADLINE_SECS
    sandbox_memory_mb: int = SANDBOX_MEMORY_MB
    sandbox_output_chars: int = SANDBOX_OUTPUT_CHARS
    sandbox_workers: int = SANDBOX_WORKERS

    def __post_init__(self) -> None:
        # A site served over https never needs a cookie that travels in clear text.
        if (self.public_url or "").lower().startswith("https://") and not self.secure_cookies:
            object.__setattr__(self, "secure_cookies", True)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from the environment, with explicit (flag) values taking precedence."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = _env(f.name)
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(str(values["data_dir"]))
        return cls(**values)  # type: ignore[arg-type]

    def resolved(self) -> Settings:
        """Fill the defaults that depend on the data directory (and create it)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        db = self.database_url or f"sqlite:///{(self.data_dir / 'livewall.db').resolve()}"
        key = self.secret_key or _load_or_create_secret(self.data_dir / "secret.key")
        return replace(self, database_url=db, secret_key=key)

    @property
    def base_url(self) -> str:
        """Where this process can be reached: the public URL if set, else host and port."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


_BOOL = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _coerce(name: str, raw: str) -> object:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind in ("int", "float"):
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ValueError(f"LIVEWALL_{name.upper()}: expected a number, got {raw!r}") from None
    if kind == "bool":
        try:
            return _BOOL[raw.lower()]
        except KeyError:
            raise ValueError(f"LIVEWALL_{name.upper()}: expected a boolean, got {raw!r}") from None
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _load_or_create_secret(path: Path) -> str:
    """The key in ``path``, created on first start. Of processes starting together on one data
    directory, exactly one key wins and every process uses it: the file is written aside, then
    linked into place (which fails if another got there first, whose complete file is then read)."""
    if path.exists():
        return _read_secret(path)
    key = secrets.token_urlsafe(32)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(aside, path)
    except FileExistsError:
        return _read_secret(path)
    finally:
        aside.unlink(missing_ok=True)
    return key


def _read_secret(path: Path) -> str:
    key = path.read_text().strip()
    if not key:
        raise ValueError(f"{path} is empty: delete it to have a new key made, or write the key into it")
    return key
