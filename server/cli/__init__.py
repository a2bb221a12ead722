"""The ``livewall`` command: serve, demo, rooms, users, orgs, worker, migrate, verify-draw.

``parser.py`` declares the commands; ``serve.py`` (serve, demo), ``rooms.py``, ``users.py`` (users,
orgs) and ``worker.py`` run them; migrate and verify-draw, a few lines each, are here with ``main``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from server.cli.parser import build_parser, settings_from
from server.cli.rooms import cmd_rooms
from server.cli.serve import cmd_demo, cmd_serve
from server.cli.users import cmd_orgs, cmd_users
from server.cli.worker import cmd_worker
from server.compat import UnsupportedDependency

__all__ = ["build_parser", "main"]


def cmd_migrate(args: argparse.Namespace) -> int:
    from server.storage.db import migrate

    settings = settings_from(args)
    assert settings.database_url
    migrate(settings.database_url)
    print("database is at the newest schema")
    return 0


def cmd_verify_draw(args: argparse.Namespace) -> int:
    import json

    from server.draws.rules import verify_record

    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        record = json.loads(text)
    except (OSError, ValueError) as exc:
        print(f"livewall: cannot read the record: {exc}", file=sys.stderr)
        return 2
    if not isinstance(record, dict):
        print("livewall: a draw record is a JSON object", file=sys.stderr)
        return 2
    verdict = verify_record(record)
    name = record.get("draw", "?")
    if verdict.valid:
        print(f"draw {name}: VALID. The seed matches its commitment, the entrants match theirs, and")
        print(f"the {len(verdict.winners)} winner(s) are exactly what the seed gives:")
        for place in sorted(verdict.winners, key=lambda p: p.place):
            print(f"  place {place.place} (tier {place.tier}): entrant {place.entrant}")
        return 0
    print(f"draw {name}: NOT VALID")
    for problem in verdict.problems:
        print(f"  - {problem}")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler = {
            "serve": cmd_serve,
            "demo": cmd_demo,
            "rooms": cmd_rooms,
            "users": cmd_users,
            "orgs": cmd_orgs,
            "migrate": cmd_migrate,
            "worker": cmd_worker,
            "verify-draw": cmd_verify_draw,
        }[args.command]
        return handler(args)
    except (ValueError, UnsupportedDependency) as exc:
        print(f"livewall: {exc}", file=sys.stderr)
        return 2
