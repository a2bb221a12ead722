"""Follow-up exactly once across crashes: real worker processes killed with SIGKILL while sending.

    python -m bench.followup_crash --messages 1000 --kills 20 --dbs sqlite,postgres

Each run seeds ``--messages`` due emails to as many opted-in contacts, starts a local SMTP relay
(aiosmtpd) that takes about ``--relay-delay`` seconds over each message before it answers (the slow
relay of issue 18; each message 0.5 to 1.5 times that, so that its acceptances spread over time
rather than come in waves), then, ``--kills`` times: starts a real ``livewall worker`` process,
waits until it is sending, lets it send for a random part of ``--kill-span`` seconds and kills it
with SIGKILL; a last worker finishes the work. Then every inbox is read: a message missing from its
recipient's inbox is lost; a second copy of one Message-ID in an inbox is a duplicate.

The relay accepts a message only by answering 250 to it: it stores the message and answers in one
step after the delay, and a connection that closes during the delay (the worker was killed) leaves
nothing stored, as RFC 5321 has it (the receiver takes responsibility by sending 250).

What is left unsafe is the window from the relay's 250 to the moment the worker's record of the send
is durable: a kill inside it makes the next worker re-send the message (after the uncertain grace).
And one the worker cannot close: a killed process keeps its sockets open until the kernel has torn
it down (its memory first, its files last: about 10 ms for a worker's ~120 MB), and a relay that
answers 250 meanwhile has taken a message whose sender is already dead. For each duplicate the run
reports the kill nearest to the relay's first 250 (negative: the 250 came after the kill) and the
teardown time of the killed workers (from SIGKILL until the process was reaped).
The run measures that window for every message (the relay's clock at 250, the worker's log line
``livewall.followup.sent`` right after the commit; one machine, one clock) and reports its median,
p99 and maximum, and the share of the sending time during which a kill would have hit at least one
message's window. Prints a table and writes bench/results/followup-crash.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func
from sqlmodel import col, select

from bench.run import REPO, RESULTS, free_port
from server.followup.channels.email import message_id
from server.storage import Database, now_ms
from server.storage.followup import Consent, Contact, Message

MAIL_FROM = "Livewall <no-reply@localhost>"


@dataclass
class Relay:
    """An SMTP relay that takes ``delay`` seconds over each message, then stores it and answers 250
    in one step; a sender that hangs up meanwhile leaves nothing (aiosmtpd cancels the handler)."""

    delay: float
    parallel: int = 0  # messages the relay works on at once (0: no limit)
    jitter: float = 0.5  # each message takes delay * (1 +- jitter): acceptances spread over time
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    inbox: dict[str, list[str]] = field(default_factory=dict)  # recipient -> Message-IDs, in order
    accepted_ms: dict[str, list[float]] = field(default_factory=dict)  # Message-ID -> times of 250
    begun: int = 0  # DATA commands begun
    lock: threading.Lock = field(default_factory=threading.Lock)
    _slots: asyncio.Semaphore | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.begun += 1
        delay = self.delay * self.rng.uniform(1 - self.jitter, 1 + self.jitter)
        if self.parallel:
            if self._slots is None:  # created on the relay's own event loop
                self._slots = asyncio.Semaphore(self.parallel)
            async with self._slots:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(delay)
        mid = str(email.message_from_bytes(envelope.content)["Message-ID"])
        with self.lock:  # nothing awaited from here to the answer
            for rcpt in envelope.rcpt_tos:
                self.inbox.setdefault(rcpt, []).append(mid)
            self.accepted_ms.setdefault(mid, []).append(time.time() * 1000)
        return "250 2.0.0 queued"

    def copies(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.inbox.values())


async def seed(db: Database, n: int) -> dict[int, tuple[str, str]]:
    """``n`` contacts with email consent and one due email each; {message id: (address, Message-ID)}."""
    from server.followup.store import ensure_room
    from server.rooms.actions import create_room

    room, _ = await create_room(db, title="Crash room")
    t = now_ms()
    async with db.session() as session:
        await ensure_room(session, room.id)
        for i in range(n):
            contact = Contact(
                id=f"c{i:05d}", email=f"buyer{i}@example.com", created_ms=t, updated_ms=t, locale="en"
            )
            session.add(contact)
            await session.flush()
            session.add(
                Consent(
                    contact_id=contact.id, channel="email", status="granted", source="bench", updated_ms=t
                )
            )
            session.add(
                Message(
                    idem_key=f"crash:{i}",
                    room_id=room.id,
                    contact_id=contact.id,
                    channel="email",
                    template="payment-thanks",
                    transactional=True,
                    context=f'{{"order_id": "O-{i}"}}',
                    next_ms=t,
                    created_ms=t,
                )
            )
        await session.commit()
        rows = (await session.exec(select(Message.id, Message.idem_key, Message.contact_id))).all()
    return {
        int(mid): (f"buyer{int(str(cid)[1:])}@example.com", message_id(key, MAIL_FROM))
        for mid, key, cid in rows
        if mid is not None
    }


async def _counts(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = (await session.exec(select(Message.status, func.count()).group_by(col(Message.status)))).all()
        resends = (await session.exec(select(func.coalesce(func.sum(Message.uncertain_resends), 0)))).one()
    return {**{str(s): int(n) for s, n in rows}, "uncertain_resends": int(resends)}


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server", "worker"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env={**os.environ, **env},
            cwd=REPO,
        )


async def _until(check: Any, limit: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the worker exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {limit:.0f} s")
        await asyncio.sleep(0.02)


def recorded_times(log: Path) -> dict[int, list[tuple[float, float]]]:
    """{message id: (when the worker read the provider's answer, when its ``sent`` record became
    durable)}, from the workers' JSON logs."""
    found: dict[int, list[tuple[float, float]]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"livewall.followup.sent"' not in line:
            continue
        with contextlib.suppress(ValueError, KeyError):
            entry = json.loads(line)
            times = (float(entry["answered_ms"]), float(entry["recorded_ms"]))
            found.setdefault(int(entry["message_id"]), []).append(times)
    return found


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _exposed_ms(windows: list[tuple[float, float]]) -> float:
    """Total time covered by the union of [start, end) windows."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(windows):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


async def run_once(
    database_url: str,
    work: Path,
    *,
    messages: int,
    kills: int,
    relay_delay: float,
    relay_parallel: int = 0,
    kill_span: float,
    grace: float,
    lease: float,
    seed_value: int,
    limit: float = 600,
) -> dict[str, Any]:
    """One crash run; the result row (see the module's docstring)."""
    rng = random.Random(seed_value)
    relay = Relay(relay_delay, relay_parallel)
    smtp = Controller(relay, hostname="127.0.0.1", port=free_port())
    smtp.start()
    db = Database(database_url)
    log = work / "worker.log"
    try:
        await asyncio.to_thread(db.migrate)
        expected = await seed(db, messages)
        env = {
            "LIVEWALL_DATABASE_URL": database_url,
            "LIVEWALL_DATA_DIR": str(work),
            "LIVEWALL_SECRET_KEY": "bench-secret",
            "LIVEWALL_MAIL_FROM": MAIL_FROM,
            "LIVEWALL_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}?tls=none",
            "LIVEWALL_FOLLOWUP_LEASE_SECS": str(lease),
            "LIVEWALL_FOLLOWUP_TICK_SECS": "0.05",
            "LIVEWALL_FOLLOWUP_UNCERTAIN_GRACE_SECS": str(grace),
            "LIVEWALL_LOG_LEVEL": "info",
            "LIVEWALL_LOG_JSON": "true",
        }
        started = time.monotonic()
        done_kills = 0
        kill_times: list[float] = []
        teardown: list[float] = []
        for _ in range(kills):
            if relay.copies() >= messages:
                break  # everything went out before this kill: the run is too short for its kills
            begun = relay.begun
            proc = _worker(env, log)

            async def sending(proc: subprocess.Popen[bytes] = proc, begun: int = begun) -> bool:
                return relay.begun > begun or relay.copies() >= messages

            await _until(sending, 60, "sending", proc)
            await asyncio.sleep(rng.uniform(0, kill_span))
            killed = time.time() * 1000
            os.kill(proc.pid, signal.SIGKILL)
            kill_times.append(killed)
            await asyncio.to_thread(proc.wait, 10)
            # Until the kernel has torn the process down (its memory first, its sockets last), the
            # relay can still take a message whose sender is already dead.
            teardown.append(time.time() * 1000 - killed)
            done_kills += 1
        proc = _worker(env, log)

        async def finished() -> bool:
            counts = await _counts(db)
            return counts.get("sent", 0) == messages

        try:
            await _until(finished, limit, f"all {messages} sent", proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - started
        counts = await _counts(db)
    finally:
        smtp.stop()
        await db.dispose()

    lost = duplicates = 0
    # For each duplicate: the kill nearest to the relay's first 250, in ms (negative: the 250 came
    # after the kill, while the killed process was being torn down).
    kill_offsets: list[float] = []
    for address, mid in expected.values():
        got = relay.inbox.get(address, []).count(mid)
        lost += got == 0
        duplicates += max(0, got - 1)
        if got > 1 and kill_times:
            first = relay.accepted_ms[mid][0]
            offsets: list[float] = [k - first for k in kill_times]
            nearest = min(offsets, key=abs)
            kill_offsets.append(round(nearest, 2))
    # The unsafe window of every message: from the relay's 250 to the durable record of it.
    recorded = recorded_times(log)
    windows: list[tuple[float, float]] = []
    reading: list[float] = []  # the part from the relay's 250 to the worker having read it
    for msg_id, (_address, mid) in expected.items():
        for answered, end in recorded.get(msg_id, []):
            starts = [a for a in relay.accepted_ms.get(mid, []) if a <= end]
            if starts:
                windows.append((max(starts), end))
                reading.append(max(0.0, answered - max(starts)))
    widths = [end - start for start, end in windows]
    span = (max(e for _, e in windows) - min(s for s, _ in windows)) if windows else 0.0
    exposed = _exposed_ms(windows)
    return {
        "messages": messages,
        "kills": done_kills,
        "lost": lost,
        "duplicates": duplicates,
        "dup_per_1000": round(1000 * duplicates / messages, 2),
        "uncertain_resends": counts["uncertain_resends"],
        "dup_kill_offsets_ms": sorted(kill_offsets),
        "teardown_ms_p50": _pct(teardown, 0.5),
        "teardown_ms_max": round(max(teardown), 2) if teardown else None,
        "statuses": {k: v for k, v in counts.items() if k != "uncertain_resends"},
        "window_ms_p50": _pct(widths, 0.5),
        "window_ms_p99": _pct(widths, 0.99),
        "window_ms_max": round(max(widths), 2) if widths else None,
        "windows_measured": len(widths),
        "reading_ms_p50": _pct(reading, 0.5),
        "reading_ms_p99": _pct(reading, 0.99),
        "exposed_pct": round(100 * exposed / span, 2) if span else None,
        # A kill at a random moment of the sending makes this many duplicates on average.
        "expected_dups_per_kill": round(sum(widths) / span, 4) if span else None,
        "seconds": round(elapsed, 1),
    }


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A private PostgreSQL cluster on a free port (initdb, pg_ctl), removed afterwards; the server URL."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    initdb = shutil.which("initdb") or next(
        (str(b / "initdb") for b in bins if (b / "initdb").exists()), None
    )
    pg_ctl = shutil.which("pg_ctl") or next(
        (str(b / "pg_ctl") for b in bins if (b / "pg_ctl").exists()), None
    )
    if initdb is None or pg_ctl is None:
        raise SystemExit("PostgreSQL is not installed (tests/system-deps.sh installs it)")
    work = Path(tempfile.mkdtemp(prefix="lw-bench-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(work, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = work / "data"
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    opts = f"-p {port} -k {work} -h 127.0.0.1"
    start = [*as_user, pg_ctl, "-D", str(data), "-l", str(work / "log"), "-w", "-o", opts, "start"]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _create_db(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


def table(rows: list[dict[str, Any]]) -> str:
    head = [
        "db",
        "run",
        "messages",
        "kills",
        "lost",
        "dups",
        "dups/1000",
        "uncertain resends",
        "window p50 ms",
        "p99 ms",
        "max ms",
        "exposed %",
        "s",
    ]
    keys = [
        "db",
        "run",
        "messages",
        "kills",
        "lost",
        "duplicates",
        "dup_per_1000",
        "uncertain_resends",
        "window_ms_p50",
        "window_ms_p99",
        "window_ms_max",
        "exposed_pct",
        "seconds",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if r.get(k) is None else str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for db in sorted({r["db"] for r in rows}):
        mine = [r for r in rows if r["db"] == db]
        sent = sum(r["messages"] for r in mine)
        dups = sum(r["duplicates"] for r in mine)
        out.append(
            {
                "db": db,
                "runs": len(mine),
                "messages": sent,
                "kills": sum(r["kills"] for r in mine),
                "lost": sum(r["lost"] for r in mine),
                "duplicates": dups,
                "dup_per_1000": round(1000 * dups / sent, 2) if sent else None,
                "window_ms_p50": statistics.median(r["window_ms_p50"] for r in mine if r["window_ms_p50"]),
                "window_ms_p99": statistics.median(r["window_ms_p99"] for r in mine if r["window_ms_p99"]),
                "exposed_pct": statistics.median(
                    r["exposed_pct"] for r in mine if r["exposed_pct"] is not None
                ),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.followup_crash",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--messages", type=int, default=1000, help="emails per run (default 1000)")
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs per run (default 20)")
    p.add_argument("--runs", type=int, default=1, help="runs per database (default 1)")
    p.add_argument("--dbs", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument("--relay-delay", type=float, default=0.5, help="seconds the relay takes per message")
    p.add_argument(
        "--relay-parallel",
        type=int,
        default=0,
        help="messages the relay works on at once (default 0: no limit)",
    )
    p.add_argument("--kill-span", type=float, default=1.5, help="kill within this many seconds of sending")
    p.add_argument("--grace", type=float, default=1.0, help="LIVEWALL_FOLLOWUP_UNCERTAIN_GRACE_SECS")
    p.add_argument("--lease", type=float, default=3.0, help="LIVEWALL_FOLLOWUP_LEASE_SECS")
    p.add_argument("--seed", type=int, default=1, help="random seed of the kill times")
    p.add_argument("--out", type=Path, default=RESULTS / "followup-crash.json")
    args = p.parse_args(argv)
    dbs = [d for d in args.dbs.split(",") if d]
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(postgres_cluster()) if "postgres" in dbs else None
        for run in range(args.runs):
            for db in dbs:
                work = Path(tempfile.mkdtemp(prefix="lw-bench-crash-"))
                try:
                    url = (
                        f"sqlite:///{work / 'lw.db'}"
                        if db == "sqlite"
                        else _create_db(str(pg), f"crash_{run}")
                    )
                    row = asyncio.run(
                        run_once(
                            url,
                            work,
                            messages=args.messages,
                            kills=args.kills,
                            relay_delay=args.relay_delay,
                            relay_parallel=args.relay_parallel,
                            kill_span=args.kill_span,
                            grace=args.grace,
                            lease=args.lease,
                            seed_value=args.seed + run,
                        )
                    )
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                rows.append({"db": db, "run": run + 1, **row})
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    summary = summarize(rows)
    doc = {
        "scenario": "followup-crash",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print("\n" + table(rows))
    print("\nper database:\n" + json.dumps(summary, indent=1))
    print(f"\nwrote {args.out}")
    return 0 if all(r["lost"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
