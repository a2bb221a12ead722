"""The ``livewall`` command line: its commands, flags and help texts (what tests/test_docs.py checks
the docs against)."""

from __future__ import annotations

import argparse

from server import __version__
from server.config import Settings


def _server_flags(parser: argparse.ArgumentParser, *, default_port: int = 8000) -> None:
    parser.add_argument("--host", help="interface to listen on (LIVEWALL_HOST; default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help=f"port, 0 for any free one (LIVEWALL_PORT; default {default_port})"
    )
    parser.add_argument(
        "--public-url", help="base URL phones use, for links and the QR code (LIVEWALL_PUBLIC_URL)"
    )
    parser.add_argument("--log-level", help="debug, info, warning, error (LIVEWALL_LOG_LEVEL)")


def _storage_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", help="folder for the SQLite file and the secret key (LIVEWALL_DATA_DIR)"
    )
    parser.add_argument("--database-url", help="sqlite:///FILE or postgresql://... (LIVEWALL_DATABASE_URL)")
    parser.add_argument(
        "--redis-url", help="redis://HOST:PORT/DB to share rooms between processes (LIVEWALL_REDIS_URL)"
    )
    parser.add_argument(
        "--secret-key", help="signs cookies and links (LIVEWALL_SECRET_KEY; default: kept in data dir)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livewall",
        description="Livewall: live-commerce rooms shared by viewers' phones, "
        "the host console and the big screen.",
        epilog="Every flag also reads from a LIVEWALL_* environment variable; flags win.",
    )
    parser.add_argument("--version", action="version", version=f"livewall {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the server", description="Run the Livewall server.")
    _server_flags(serve)
    _storage_flags(serve)
    serve.add_argument(
        "--json",
        action="store_true",
        help='once listening, print {"url","host","port","api_base","healthz","readyz","metrics"} as one '
        "JSON line on standard output (the bound port when --port 0), then serve",
    )

    demo = sub.add_parser(
        "demo",
        help="create a demo room with sample products and serve it (embedded defaults)",
        description="Create a demo room with sample products, print its three links and serve it "
        "on embedded defaults (SQLite in the data dir, in-process hub).",
    )
    _server_flags(demo)
    _storage_flags(demo)
    demo.add_argument("--title", default="Livewall demo · 直播间演示", help="the demo room's title")
    demo.add_argument(
        "--json",
        action="store_true",
        help='print {"room","host_url","screen_url","viewer_url","api_base"} as one JSON line, then serve',
    )

    rooms = sub.add_parser(
        "rooms", help="create or list rooms, rotate a host key", description="Create or list rooms."
    )
    rooms_sub = rooms.add_subparsers(dest="rooms_command", metavar="ACTION", required=True)
    create = rooms_sub.add_parser("create", help="create a room and print its links")
    create.add_argument("--title", required=True, help="the room's title")
    create.add_argument("--public-url", help="base URL for the printed links (LIVEWALL_PUBLIC_URL)")
    create.add_argument("--json", action="store_true", help="print the links as one JSON object")
    _storage_flags(create)
    listing = rooms_sub.add_parser("list", help="list rooms")
    _storage_flags(listing)
    rotate = rooms_sub.add_parser(
        "rotate-key",
        help="replace a room's host key and print the new one",
        description="Replace the room's host key and print the new one (shown only now). Every host "
        "session signed in with the old key is logged out; running servers close their open consoles "
        "within seconds.",
    )
    rotate.add_argument("room", help="the room's id")
    rotate.add_argument("--public-url", help="base URL for the printed login link (LIVEWALL_PUBLIC_URL)")
    rotate.add_argument("--json", action="store_true", help='print {"room","host_key","host_url"} as JSON')
    _storage_flags(rotate)

    users = sub.add_parser(
        "users",
        help="create or list studio accounts, set a password",
        description="Studio accounts (docs/accounts.md). The first one: `livewall users create --email "
        "E --admin`.",
    )
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    user_create = users_sub.add_parser("create", help="create an account with a password")
    user_create.add_argument("--email", required=True, help="the address the person signs in with")
    user_create.add_argument("--name", help="the name shown in the studio (default: the email's first part)")
    user_create.add_argument(
        "--admin", action="store_true", help="a server admin (sees every organisation) and owner of --org"
    )
    user_create.add_argument("--org", help="the organisation to join (default: default)")
    user_create.add_argument(
        "--role",
        help="owner, host, moderator, seller, marketer or analyst (default: owner with --admin, else host)",
    )
    user_create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else: asked twice)",
    )
    user_create.add_argument("--json", action="store_true", help='print {"id","email","org","role"} as JSON')
    _storage_flags(user_create)
    users_list = users_sub.add_parser("list", help="list accounts with their organisations and roles")
    _storage_flags(users_list)
    user_password = users_sub.add_parser(
        "set-password", help="set an account's password (its studio sessions are signed out)"
    )
    user_password.add_argument("--email", required=True, help="the account's email")
    user_password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else: asked twice)",
    )
    _storage_flags(user_password)

    orgs = sub.add_parser("orgs", help="create or list organisations", description="Organisations.")
    orgs_sub = orgs.add_subparsers(dest="orgs_command", metavar="ACTION", required=True)
    org_create = orgs_sub.add_parser("create", help="create an organisation")
    org_create.add_argument("name", help="its name")
    org_create.add_argument(
        "--id", help="its id: lower-case letters, digits, dashes (default: from the name)"
    )
    _storage_flags(org_create)
    orgs_list = orgs_sub.add_parser("list", help="list organisations")
    _storage_flags(orgs_list)

    worker = sub.add_parser(
        "worker",
        help="deliver follow-up messages (journeys, campaigns) in a separate process",
        description="Run the follow-up loop without serving HTTP: route intent events into journeys, "
        "start campaigns and deliver messages. Any number of workers (and servers with "
        "LIVEWALL_FOLLOWUP_EMBEDDED=true) share the work through the database. Stops on SIGTERM/SIGINT.",
    )
    worker.add_argument("--public-url", help="base URL for links in messages (LIVEWALL_PUBLIC_URL)")
    worker.add_argument("--log-level", help="debug, info, warning, error (LIVEWALL_LOG_LEVEL)")
    _storage_flags(worker)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    _storage_flags(migrate)

    verify = sub.add_parser(
        "verify-draw",
        help="check a draw record: recompute its winners from the seed and the entrants",
        description="Check an exported draw record (GET /d/CODE/record.json): the seed matches its "
        "published SHA-256, the entrants match theirs, and the winners are what the seed gives. "
        "Exit status 0 if valid, 1 if not.",
    )
    verify.add_argument("file", help="the record (JSON); - for standard input")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, the command's flags winning (those it has)."""
    keys = ("host", "port", "public_url", "log_level", "data_dir", "database_url", "redis_url", "secret_key")
    return Settings.from_env(**{k: getattr(args, k, None) for k in keys}).resolved()
