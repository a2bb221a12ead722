"""The claim rush: N connected viewers claim U units of one discount within the same second.

    python -m bench.run claim --viewers 10000 --units 100 --runs 3
    python -m bench.run claim --configs embedded,redis2 --spread-ms 1000

Configurations (``--configs``):
- ``embedded``: one Livewall process on its defaults (SQLite, in-process hub);
- ``redis1``: one process, hub and stock counters on a redis-server the harness starts;
- ``redis2``: two processes sharing that redis-server and the database, viewers split over them.

Every run starts fresh servers and a fresh room, joins and connects the viewers through the real
flow (HTTP join, hello/welcome), and the host (its own load-generator process, over its WebSocket)
saves a product and launches a discount of ``--units`` units, one per viewer. Each viewer then
sends one ``discount.claim`` at a time drawn uniformly from the same ``--spread-ms`` window and
times the ack or error that answers it. Correctness is checked twice: from the answers (successes
against units, unique coupon codes) and independently from the store after the run (the ``claim``
rows of the discount in the SQLite file, and Redis's counter). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import (
    CLK_TCK,
    REPO,
    Loadgen,
    Server,
    connect_all,
    cpu_secs,
    default_clients,
    loadgens,
    merge_pct,
    profile_servers,
    redis_server,
    start_follower,
    start_server,
)

CONFIGS = ("embedded", "redis1", "redis2")
# The rush starts this long after the launch is acknowledged, so the `discount` event has reached
# every viewer (as on a phone: a viewer claims a deal it has seen) and the load generators have
# scheduled their sends.
LEAD_SECS = 2.0
DEAL_DURATION_SECS = 600  # far longer than any rush: no claim may be refused as `discount_ended`
ANSWER_TIMEOUT_SECS = 60  # after the last send, claims still unanswered are counted as such
CPU_READ_AHEAD_SECS = 0.2  # CPU counters are read this long before the window opens (the servers idle)
PRODUCT = {
    "name": "Bench flash-deal product",
    "price_minor": 19900,
    "currency": "CNY",
    "stock": 100_000,
    "sku": "BENCH-1",
    "shop_url": "https://shop.example/p/bench",
}


def host_request(host: Loadgen, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """One host action over the host's WebSocket; its result, or an error."""
    host.send(cmd="host", type=kind, data=data)
    reply = host.expect("host_reply", 30)
    if reply["type"] != "ack":
        raise RuntimeError(f"{kind} refused: {reply['data']}")
    result: dict[str, Any] = reply["data"]["result"]
    return result


def store_check(data_dir: Path, room: str, discount_id: int, redis_url: str | None) -> dict[str, Any]:
    """What the store says after the rush, read behind the servers' backs: the claim rows of the
    discount in the SQLite file (shared by both processes in redis2) and Redis's counter."""
    db = sqlite3.connect(f"file:{data_dir / 'livewall.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT status, COUNT(*), COUNT(DISTINCT code), COUNT(DISTINCT viewer_id) "
            "FROM claim WHERE discount_id = ? GROUP BY status",
            (discount_id,),
        ).fetchall()
        codes = {c for (c,) in db.execute("SELECT code FROM claim WHERE discount_id = ?", (discount_id,))}
        row_claimed, quantity = db.execute(
            "SELECT claimed, quantity FROM discount WHERE id = ?", (discount_id,)
        ).fetchone()
    finally:
        db.close()
    by_status = {status: n for status, n, _, _ in rows}
    out: dict[str, Any] = {
        "db_claims_by_status": by_status,
        "db_reserved": by_status.get("reserved", 0),
        "db_claims": sum(by_status.values()),
        "db_distinct_codes": len(codes),
        "db_distinct_viewers": sum(v for _, _, _, v in rows),
        "db_quantity": quantity,
        # the live count in the discount row (embedded); with Redis the counters live there
        "db_row_claimed": row_claimed,
        "_codes": codes,
    }
    if redis_url is not None:
        out.update(_redis_counters(redis_url, room, discount_id))
    return out


def _redis_counters(redis_url: str, room: str, discount_id: int) -> dict[str, Any]:
    """Redis's ``claimed`` counter and holder count for the discount. Keys are found by name with any
    hash-tag braces ignored (``lw:disc:{ROOM:ID}`` or ``lw:disc:ROOM:ID``, server/discounts/stock.py),
    so a change of the tag does not silently blind the check: no key found reads as None."""
    import redis

    base = f"lw:disc:{room}:{discount_id}"
    found: dict[str, bytes] = {}
    r = redis.Redis.from_url(redis_url)
    try:
        for key in r.scan_iter(match=f"lw:disc:*{room}*", count=1000):
            plain = key.decode().replace("{", "").replace("}", "")
            if plain in (base, f"{base}:held"):
                found[plain] = key
        claimed = r.hget(found[base], "c") if base in found else None
        holders = r.hlen(found[f"{base}:held"]) if f"{base}:held" in found else None
    finally:
        r.close()
    return {"redis_claimed": int(claimed) if claimed is not None else None, "redis_holders": holders}


def _redis_pid(redis_url: str) -> int:
    import redis

    r = redis.Redis.from_url(redis_url)
    try:
        return int(r.info("server")["process_id"])
    finally:
        r.close()


def one_run(
    args: argparse.Namespace, node: str, work: Path, config: str, viewers: int, run: int
) -> dict[str, Any]:
    """Fresh servers and room, N viewers connected, one discount launched, one rush measured."""
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server()) if config != "embedded" else None
        data = Path(tempfile.mkdtemp(prefix=f"claim-{config}-", dir=work))
        # The production limits (one claim per viewer is far below them; the host sends two messages).
        a = start_server("livewall", data, redis_url=redis_url, lift_limits=False)
        stack.callback(a.stop)
        servers: list[Server] = [a]
        if config == "redis2":
            assert redis_url is not None
            b = start_follower(a, redis_url)
            stack.callback(b.stop)
            servers.append(b)
        clients = max(len(servers), args.clients or default_clients(viewers))
        gens = loadgens(node, "livewall", servers, viewers, clients=clients)
        for g in gens:
            stack.callback(g.close)
        load_before = os.getloadavg()[0]
        conn = connect_all(gens, servers, timeout=180 + viewers / 40)
        host, crowd = gens[0], gens[1:]
        product = host_request(host, "product.save", PRODUCT)
        deal = host_request(
            host,
            "discount.launch",
            {
                "product_id": product["id"],
                "percent_off": 50,
                "quantity": args.units,
                "duration_secs": DEAL_DURATION_SECS,
                "per_viewer_limit": 1,
            },
        )
        start_at = time.time() * 1000 + LEAD_SECS * 1000
        profilers = profile_servers(
            servers, f"claim-{config}-{viewers}-r{run}", LEAD_SECS + args.spread_ms / 1000 + 8
        )
        for g in crowd:
            g.send(
                cmd="claim",
                run_id=run,
                discount_id=deal["id"],
                start_at=start_at,
                spread_ms=args.spread_ms,
                timeout=ANSWER_TIMEOUT_SECS,
            )
        # CPU is counted from the start of the window to the last answer. The first readings are taken
        # just before the window opens: once it has, this process may not get a core at once.
        redis_pid = _redis_pid(redis_url) if redis_url else None
        time.sleep(max(0.0, start_at / 1000 - CPU_READ_AHEAD_SECS - time.time()))
        procs = [s.pid for s in servers]
        cpu0 = {pid: cpu_secs(pid) for pid in procs}
        redis_cpu0 = cpu_secs(redis_pid) if redis_pid else 0.0
        lg0 = [cpu_secs(g.proc.pid) for g in gens]
        busy0 = _machine_busy_secs()
        answers = [g.expect("claimed", args.spread_ms / 1000 + ANSWER_TIMEOUT_SECS + 30) for g in crowd]
        wall = max(0.001, time.time() - start_at / 1000)
        busy = _machine_busy_secs() - busy0
        cpu_each = [cpu_secs(pid) - cpu0[pid] for pid in procs]
        redis_cpu = cpu_secs(redis_pid) - redis_cpu0 if redis_pid else None
        lg_each = [cpu_secs(g.proc.pid) - c for g, c in zip(gens, lg0, strict=True)]
        # CPU that none of this run's processes used: other work on the machine during the rush
        other = busy - sum(cpu_each) - (redis_cpu or 0.0) - sum(lg_each)
        load_rush = os.getloadavg()[0]
        store = store_check(data, a.room, deal["id"], redis_url)
        for proc in profilers:
            proc.wait(60)
    return _row(
        args,
        config,
        viewers,
        run,
        conn=conn,
        deal=deal,
        answers=answers,
        store=store,
        start_at=start_at,
        wall=wall,
        cpu_each=cpu_each,
        redis_cpu=redis_cpu,
        lg_each=lg_each,
        load=(load_before, load_rush),
        other_cpu=other,
    )


def _row(
    args: argparse.Namespace,
    config: str,
    viewers: int,
    run: int,
    *,
    conn: dict[str, Any],
    deal: dict[str, Any],
    answers: list[dict[str, Any]],
    store: dict[str, Any],
    start_at: float,
    wall: float,
    cpu_each: list[float],
    redis_cpu: float | None,
    lg_each: list[float],
    load: tuple[float, float],
    other_cpu: float,
) -> dict[str, Any]:
    """One result row: answers, the store's view, the checks, latency, CPU."""
    outcomes: dict[str, int] = {}
    for a in answers:
        for code, n in a["outcomes"].items():
            outcomes[code] = outcomes.get(code, 0) + n
    successes = outcomes.pop("ok", 0)
    codes = [c for a in answers for c in a["codes"]]
    db_codes: set[str] = store.pop("_codes")
    units = args.units
    expected = min(units, viewers)
    sent = sum(a["sent"] for a in answers)
    unanswered = sum(a["unanswered"] for a in answers)
    last_ok = max((a["last_ok"] for a in answers if a["last_ok"]), default=0)
    checks = {
        "oversell": max(0, successes - units),
        # fewer than the units were sold although every viewer claimed and was answered
        "undersell": max(0, expected - successes),
        "duplicate_codes": len(codes) - len(set(codes)),
        "db_oversell": max(0, store["db_reserved"] - units),
        # the answers and the store agree: the same number, the very same codes, one per viewer
        "db_matches_answers": store["db_reserved"] == successes
        and set(codes) == db_codes
        and store["db_distinct_viewers"] == store["db_claims"],
    }
    if "redis_claimed" in store:
        checks["redis_matches_db"] = store["redis_claimed"] == store["db_reserved"]
    else:
        checks["row_matches_db"] = store["db_row_claimed"] == store["db_reserved"]
    correct = (
        checks["oversell"] == 0
        and checks["db_oversell"] == 0
        and checks["undersell"] == 0
        and checks["duplicate_codes"] == 0
        and checks["db_matches_answers"]
        and checks.get("redis_matches_db", True)
        and checks.get("row_matches_db", True)
        and unanswered == 0
        and sent == viewers
    )
    lag = [a["send_lag_ms"] for a in answers]
    return {
        "scenario": "claim",
        "server": "livewall",
        "config": config,
        "processes": len(cpu_each),
        "run": run,
        "units": units,
        "spread_ms": args.spread_ms,
        "discount_id": deal["id"],
        **conn,
        "sent": sent,
        "not_sent": sum(a["not_sent"] for a in answers),
        "unanswered": unanswered,
        "successes": successes,
        "refusals": outcomes,
        **checks,
        **store,
        "correct": correct,
        "claim_ms": merge_pct([a["lat"] for a in answers]),
        # when the successes were answered, from the start of the rush window
        "success_at_ms": merge_pct([a["ok_at"] for a in answers]),
        "rush_start_ms": round(start_at),  # wall clock (ms since the epoch), as the load generators use
        "sold_out_after_ms": round(last_ok - start_at, 1) if last_ok else None,
        "all_answered_after_ms": round(max(a["last_answer"] for a in answers) - start_at, 1),
        "send_lag_ms_p99": max((x["p99"] or 0) for x in lag),
        "send_lag_ms_max": max((x["max"] or 0) for x in lag),
        "sends_per_100ms": _sum_series([a["sends_per_100ms"] for a in answers]),
        "answers_per_100ms": _sum_series([a["answers_per_100ms"] for a in answers]),
        "viewer_events": sum(a["events"] for a in answers),
        "viewer_stock_events": sum(a["stock_events"] for a in answers),
        "window_s": round(wall, 2),
        "server_cpu_s": round(sum(cpu_each), 2),
        "server_cpu_pct": round(100 * sum(cpu_each) / wall, 1),
        "server_cpu_pct_each": [round(100 * c / wall, 1) for c in cpu_each],
        "redis_cpu_pct": round(100 * redis_cpu / wall, 1) if redis_cpu is not None else None,
        "loadgen_cpu_pct": round(100 * sum(lg_each) / wall, 1),
        "loadgen_max_proc_cpu_pct": round(100 * max(lg_each) / wall, 1),
        "loadavg_1m_before": round(load[0], 2),
        "loadavg_1m_after": round(load[1], 2),
        # CPU used on the machine during the rush by processes other than this run's (100 = one core)
        "other_cpu_pct": round(100 * other_cpu / wall, 1),
        **_source(),
    }


def _machine_busy_secs() -> float:
    """CPU time spent by the whole machine (all CPUs, not idle or iowait), from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def _source() -> dict[str, Any]:
    """Which server code was measured: the tree may change between runs."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "git_head": git("rev-parse", "--short", "HEAD"),
        "server_changes": git("status", "--short", "server"),
    }


def _sum_series(parts: list[list[int]]) -> list[int]:
    out = [0] * max((len(p) for p in parts), default=0)
    for part in parts:
        for i, n in enumerate(part):
            out[i] += n
    return out


def scenario(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    rows = []
    for viewers in args.viewers:
        for config in args.configs:
            for run in range(1, args.runs + 1):
                row = one_run(args, node, work, config, viewers, run)
                rows.append(row)
                _progress(row)
    return rows


def _progress(row: dict[str, Any]) -> None:
    lat = row["claim_ms"]
    sys.stderr.write(
        f"  claim {row['config']:<8} viewers={row['viewers']} units={row['units']} run={row['run']} "
        f"ok={row['successes']} refused={row['refusals']} unanswered={row['unanswered']} "
        f"oversell={row['oversell']} db_reserved={row['db_reserved']} correct={row['correct']} "
        f"p50={lat['p50']} p99={lat['p99']} max={lat['max']} sold_out_after={row['sold_out_after_ms']} "
        f"cpu%={row['server_cpu_pct_each']} redis%={row['redis_cpu_pct']} "
        f"loadgen%={row['loadgen_max_proc_cpu_pct']} other%={row['other_cpu_pct']} "
        f"load={row['loadavg_1m_before']}/{row['loadavg_1m_after']}\n"
    )


MEDIAN_KEYS = (
    "successes",
    "claim_ms.p50",
    "claim_ms.p90",
    "claim_ms.p99",
    "claim_ms.max",
    "sold_out_after_ms",
    "all_answered_after_ms",
    "server_cpu_s",
    "server_cpu_pct",
    "redis_cpu_pct",
    "loadgen_max_proc_cpu_pct",
    "other_cpu_pct",
    "send_lag_ms_p99",
    "connect_s",
    "viewer_stock_events",
)
TOTAL_KEYS = ("oversell", "db_oversell", "undersell", "duplicate_codes", "unanswered", "not_sent")


def _get(row: dict[str, Any], key: str) -> Any:
    head, _, tail = key.partition(".")
    value = row.get(head)
    return (value or {}).get(tail) if tail else value


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over runs per (configuration, viewers); correctness counts are totals over runs."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["config"], row["viewers"]), []).append(row)
    out = []
    for (config, viewers), group in groups.items():
        med: dict[str, Any] = {
            "server": "livewall",
            "config": config,
            "viewers": viewers,
            "units": group[0]["units"],
            "runs": len(group),
        }
        for key in MEDIAN_KEYS:
            values = [v for v in (_get(r, key) for r in group) if isinstance(v, int | float)]
            if values:
                med[key] = round(statistics.median(values), 1)
        for key in TOTAL_KEYS:
            med[key + "_total"] = sum(int(r.get(key) or 0) for r in group)
        med["successes_each"] = [r["successes"] for r in group]
        med["claim_ms.p99_each"] = [r["claim_ms"]["p99"] for r in group]
        med["correct_runs"] = sum(bool(r["correct"]) for r in group)
        med["all_correct"] = all(r["correct"] for r in group)
        out.append(med)
    return out


COLUMNS = (
    ("config", "config", 8),
    ("viewers", "viewers", 7),
    ("units", "units", 5),
    ("runs", "runs", 4),
    ("successes", "ok", 4),
    ("oversell_total", "oversell", 8),
    ("db_oversell_total", "db over", 7),
    ("undersell_total", "under", 5),
    ("duplicate_codes_total", "dup", 3),
    ("unanswered_total", "unans", 5),
    ("all_correct", "correct", 7),
    ("claim_ms.p50", "p50 ms", 7),
    ("claim_ms.p99", "p99 ms", 7),
    ("claim_ms.max", "max ms", 7),
    ("sold_out_after_ms", "soldout", 7),
    ("server_cpu_s", "cpu s", 5),
    ("server_cpu_pct", "cpu %", 6),
    ("redis_cpu_pct", "redis%", 6),
    ("loadgen_max_proc_cpu_pct", "lg %", 5),
    ("other_cpu_pct", "other%", 6),
)


def table(summary: list[dict[str, Any]]) -> str:
    lines = ["  ".join(f"{title:>{w}}" for _k, title, w in COLUMNS)]
    order = {c: i for i, c in enumerate(CONFIGS)}
    for m in sorted(summary, key=lambda m: (m["viewers"], order.get(m["config"], 99))):
        cells = []
        for key, _title, w in COLUMNS:
            v = m.get(key, "")
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            cells.append(f"{v!s:>{w}}")
        lines.append("  ".join(cells))
    lines.append("")
    lines.append(
        "ok: median successes; oversell/db over/under/dup/unans: totals over runs (must be 0); "
        "soldout: ms from the window's start to the last success; cpu s / cpu %: all server processes "
        "from the window's start to the last answer; lg %: busiest load generator; "
        "other%: CPU used by other processes on the machine during the rush (100 = one core)"
    )
    return "\n".join(lines)
