"""The flood: one client sending frames as fast as it can beside quiet viewers of a paced broadcast.

    python -m bench.run flood --viewers 1000 --rate 10 --duration 30 --runs 3
    python -m bench.run flood --viewers 1000 --limits off        (the inbound limits lifted)

One Livewall server on its default inbound limits (``--limits off`` lifts them, to show what they
buy), ``--viewers`` viewers connected through the real flow (HTTP join, hello/welcome) and the host
announcing at ``--rate``. Each run has two measurement windows on the same connected population:
one calm, one while a flooding client (a load-generator process of its own, its own address) sends
``ping`` frames as fast as its socket takes them, and opens again at once whenever it is closed.
The windows alternate in order from run to run (calm first in odd runs), so neither always comes
second. Reported per window: the quiet viewers' delivery latency, loss and gaps, the server's CPU;
per run, the ratio of the flood window's p99 to the calm window's (the target: within 1.5x), and
what the flooder got out (frames written, pongs back, close codes). See bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import (
    Loadgen,
    connect_all,
    cpu_secs,
    loadgens,
    measure,
    start_server,
)

TARGET_RATIO = 1.5
# Lifted limits for --limits off: the protocol still counts frames, but never holds any back.
LIFTED = {
    "LIVEWALL_INBOUND_BURST": "1000000000",
    "LIVEWALL_INBOUND_RATE_PER_SEC": "1000000000",
    "LIVEWALL_INBOUND_BURST_BYTES": "1000000000000",
    "LIVEWALL_INBOUND_BYTES_PER_SEC": "1000000000000",
}


def scenario(args: argparse.Namespace, node: str, work: Path) -> list[dict[str, Any]]:
    rows = []
    for viewers in args.viewers:
        data = Path(tempfile.mkdtemp(prefix="livewall-", dir=work))
        server = start_server(
            "livewall", data, lift_limits=False, extra_env=LIFTED if args.limits == "off" else None
        )
        gens = loadgens(node, "livewall", [server], viewers, clients=args.clients)
        flooder = Loadgen(
            node,
            {
                "name": "flooder",
                "kind": "livewall",
                "room": server.room,
                "host_key": server.host_key,
                "viewers": 0,
                "host": False,
                "targets": [{"api_base": server.api_base, "ws_base": server.ws_base}],
            },
        )
        try:
            conn = connect_all(gens, [server], timeout=120 + viewers / 50)
            for run in range(args.runs):
                order = ("calm", "flood") if run % 2 == 0 else ("flood", "calm")
                windows: dict[str, dict[str, Any]] = {}
                flood_stats: dict[str, Any] = {}
                for i, phase in enumerate(order):
                    run_id = 2 * run + i + 1
                    if phase == "flood":
                        flooder.send(cmd="flood", on=True)
                        flooder.expect("flood", 30)
                        cpu0 = cpu_secs(flooder.proc.pid)
                        t0 = time.monotonic()
                    m = measure(gens, [server], run_id, rate=args.rate, duration=args.duration)
                    if phase == "flood":
                        flood_cpu = cpu_secs(flooder.proc.pid) - cpu0
                        flood_wall = time.monotonic() - t0
                        flooder.send(cmd="flood", on=False)
                        stats = flooder.expect("flood", 30)
                        flood_stats = {
                            "frames_sent": stats["frames_sent"],
                            "frames_per_s": round(stats["frames_sent"] / flood_wall),
                            "pongs": stats["pongs"],
                            "opens": stats["opens"],
                            "closes": stats["closes"],
                            "cpu_pct": round(100 * flood_cpu / flood_wall, 1),
                        }
                    windows[phase] = m
                calm_p99 = windows["calm"]["lat_ms"]["p99"]
                flood_p99 = windows["flood"]["lat_ms"]["p99"]
                row = {
                    "scenario": "flood",
                    "server": "livewall",
                    "limits": args.limits,
                    "viewers": conn["viewers"],
                    "run": run + 1,
                    "order": list(order),
                    "rate": args.rate,
                    "duration_s": args.duration,
                    **conn,
                    "calm": windows["calm"],
                    "flood": windows["flood"],
                    "flooder": flood_stats,
                    "calm_p99_ms": calm_p99,
                    "flood_p99_ms": flood_p99,
                    "p99_ratio": round(flood_p99 / calm_p99, 2) if calm_p99 and flood_p99 else None,
                }
                rows.append(row)
                _progress(row)
        finally:
            flooder.close()
            for g in gens:
                g.close()
            server.stop()
    return rows


def _progress(row: dict[str, Any]) -> None:
    f = row["flooder"]
    sys.stderr.write(
        f"  flood viewers={row['viewers']} run={row['run']} ({'/'.join(row['order'])}) "
        f"calm p50/p99={row['calm']['lat_ms']['p50']}/{row['calm_p99_ms']} ms "
        f"flood p50/p99={row['flood']['lat_ms']['p50']}/{row['flood_p99_ms']} ms ratio={row['p99_ratio']} "
        f"flooder frames={f.get('frames_sent')} pongs={f.get('pongs')} closes={f.get('closes')}\n"
    )


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per viewer count: medians over runs of both windows' p50/p99 and of the ratio; totals of loss."""
    out = []
    for viewers in sorted({r["viewers"] for r in rows}):
        group = [r for r in rows if r["viewers"] == viewers]

        def med(values: list[Any]) -> float | None:
            nums = [v for v in values if isinstance(v, int | float)]
            return round(statistics.median(nums), 2) if nums else None

        ratio = med([r["p99_ratio"] for r in group])
        out.append(
            {
                "viewers": viewers,
                "limits": group[0]["limits"],
                "runs": len(group),
                "calm_p50_ms": med([r["calm"]["lat_ms"]["p50"] for r in group]),
                "calm_p99_ms": med([r["calm_p99_ms"] for r in group]),
                "flood_p50_ms": med([r["flood"]["lat_ms"]["p50"] for r in group]),
                "flood_p99_ms": med([r["flood_p99_ms"] for r in group]),
                "p99_ratio": ratio,
                "p99_ratios": [r["p99_ratio"] for r in group],
                "target_ratio": TARGET_RATIO,
                "met": ratio is not None and ratio <= TARGET_RATIO,
                "loss_total": sum(r["calm"]["loss"] + r["flood"]["loss"] for r in group),
                "gaps_total": sum(r["calm"]["gaps"] + r["flood"]["gaps"] for r in group),
                "calm_cpu_pct": med([r["calm"]["server_cpu_pct"] for r in group]),
                "flood_cpu_pct": med([r["flood"]["server_cpu_pct"] for r in group]),
                "flooder_frames_per_s": med([r["flooder"].get("frames_per_s") for r in group]),
                "flooder_pongs": med([r["flooder"].get("pongs") for r in group]),
                "flooder_closes": [r["flooder"].get("closes") for r in group],
            }
        )
    return out


COLUMNS = [
    ("viewers", "viewers", 7),
    ("limits", "limits", 7),
    ("runs", "runs", 4),
    ("calm_p50_ms", "calm p50", 9),
    ("calm_p99_ms", "calm p99", 9),
    ("flood_p50_ms", "flood p50", 9),
    ("flood_p99_ms", "flood p99", 9),
    ("p99_ratio", "ratio", 6),
    ("met", "<=1.5x", 6),
    ("loss_total", "loss", 5),
    ("gaps_total", "gaps", 5),
    ("calm_cpu_pct", "cpu calm", 8),
    ("flood_cpu_pct", "cpu flood", 9),
    ("flooder_frames_per_s", "flood fr/s", 10),
    ("flooder_pongs", "pongs", 6),
]


def table(summary: list[dict[str, Any]]) -> str:
    lines = ["  ".join(f"{title:>{w}}" for _k, title, w in COLUMNS)]
    for m in summary:
        lines.append("  ".join(f"{m.get(k)!s:>{w}}" for k, _t, w in COLUMNS))
    lines.append("")
    for m in summary:
        lines.append(
            f"  {m['viewers']} viewers: p99 ratio per run {m['p99_ratios']}; "
            f"flooder closes {m['flooder_closes']}"
        )
    return "\n".join(lines)
