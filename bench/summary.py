"""One table of every scenario against issue 4's targets: bench/results/summary.json and markdown.

    python -m bench.summary [--md FILE]

Reads the scenario files that ``python -m bench.run`` wrote in bench/results (fanout, blast, idle,
reconnect, redis2, comments) and keeps their medians, the ratios to the peers, and for each target
whether it was met. A scenario without a file keeps its entry from the previous summary.json (each
entry says when it was measured), so re-running one scenario updates only its figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("fanout", "blast", "idle", "reconnect", "redis2", "comments")


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _med(doc: dict[str, Any] | None, server: str, viewers: int | None = None) -> dict[str, Any] | None:
    if doc is None:
        return None
    rows = [
        m for m in doc["summary"] if m["server"] == server and (viewers is None or m["viewers"] == viewers)
    ]
    return max(rows, key=lambda m: m["viewers"]) if rows else None


def targets(docs: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Issue 4's targets, each with the measured figure and met / missed."""
    out: list[dict[str, Any]] = []

    def add(name: str, target: str, measured: str, met: bool | None) -> None:
        out.append({"target": name, "wanted": target, "measured": measured, "met": met})

    f = _med(docs["fanout"], "livewall", 10000)
    if f:
        ok = f.get("lat_ms.p99", 1e9) < 250 and f.get("loss_total") == 0 and f.get("gaps_total") == 0
        add(
            "(a) 10k viewers, 10 broadcasts/s",
            "p99 < 250 ms, no loss, no gap",
            f"p99 {f.get('lat_ms.p99')} ms, loss {f.get('loss_total')}, gaps {f.get('gaps_total')}",
            ok,
        )
    b, s = _med(docs["blast"], "livewall"), _med(docs["blast"], "socketio")
    if b:
        ratio = b["deliveries_per_s"] / s["deliveries_per_s"] if s and s.get("deliveries_per_s") else None
        add(
            "(b) blast ceiling",
            ">= 100,000 deliveries/s and >= 10x python-socketio",
            f"{b.get('deliveries_per_s'):,.0f}/s" + (f", {ratio:.1f}x socketio" if ratio else ""),
            b.get("deliveries_per_s", 0) >= 100_000 and (ratio is None or ratio >= 10),
        )
    r2 = _med(docs["redis2"], "livewall")
    if r2:
        add(
            f"(c) {r2['viewers']:,} viewers over 2 processes + redis",
            "p99 < 400 ms at 20,000",
            f"p99 {r2.get('lat_ms.p99')} ms, loss {r2.get('loss_total')}, gaps {r2.get('gaps_total')}",
            r2.get("lat_ms.p99", 1e9) < 400 and r2["viewers"] >= 20000 and r2.get("loss_total") == 0,
        )
    i = _med(docs["idle"], "livewall")
    if i:
        add(
            f"(d) memory per idle connection ({i['viewers']:,})",
            "<= 20 KiB (RSS growth / viewers)",
            f"{i.get('kib_per_conn')} KiB",
            i.get("kib_per_conn", 1e9) <= 20,
        )
    rc = _med(docs["reconnect"], "livewall")
    if rc:
        add(
            f"(e) reconnect storm, {rc['viewers']:,} viewers, redis backend",
            "all resume, no gap, within 10 s",
            f"all back in {rc.get('all_back_s')} s, not back {rc.get('not_back_total')}, "
            f"resume failed {rc.get('resume_failed_total')}, gaps {rc.get('gaps_total')}",
            rc.get("not_back_total") == 0
            and rc.get("resume_failed_total") == 0
            and rc.get("gaps_total") == 0
            and rc.get("all_back_s", 1e9) <= 10,
        )
    c = _med(docs["comments"], "livewall")
    if c:
        add(
            f"(issue 5) comment storm, {c['viewers']:,} viewers",
            "host sees every item, host receipt p99 < 500 ms",
            f"lost {c.get('host_items_lost')}, host p99 {c.get('host_item_ms.p99')} ms, "
            f"screen {c.get('screen_frames_per_s')} frames/s, cpu {c.get('server_cpu_pct')} %",
            c.get("host_items_lost") == 0 and c.get("host_item_ms.p99", 1e9) < 500,
        )
    return out


def markdown(doc: dict[str, Any]) -> str:
    lines = ["| Target | Wanted | Measured (median of runs) | |", "|---|---|---|---|"]
    for t in doc["targets"]:
        mark = {True: "met", False: "missed", None: "?"}[t["met"]]
        lines.append(f"| {t['target']} | {t['wanted']} | {t['measured']} | {mark} |")
    lines += [
        "",
        "| Scenario | Server | Viewers | p50 ms | p99 ms | deliveries/s | loss | gaps | server CPU % "
        "| KiB/conn | loadgen busiest proc CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        sdoc = doc["scenarios"].get(name)
        if not sdoc:
            continue
        for m in sorted(sdoc["summary"], key=lambda m: (m["viewers"], m["server"])):
            cells = [
                name,
                m["server"],
                f"{m['viewers']:,}",
                m.get("lat_ms.p50", ""),
                m.get("lat_ms.p99", ""),
                f"{m['deliveries_per_s']:,.0f}" if m.get("deliveries_per_s") else "",
                m.get("loss_total", ""),
                m.get("gaps_total", ""),
                m.get("server_cpu_pct", ""),
                m.get("kib_per_conn", ""),
                m.get("loadgen_max_proc_cpu_pct", ""),
            ]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    ratios = [
        (name, m["viewers"], k, v)
        for name in SCENARIOS
        for m in (doc["scenarios"].get(name) or {}).get("summary", [])
        for k, v in m.items()
        if "_x_" in k
    ]
    if ratios:
        lines += ["", "Livewall against the peers, same run and machine:", ""]
        lines += [f"- {name} {viewers:,} viewers: {k} = {v}x" for name, viewers, k, v in ratios]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.summary", description=__doc__)
    p.add_argument("--md", type=Path, help="also write the markdown table here")
    args = p.parse_args(argv)
    previous = _load("summary") or {}
    docs = {name: _load(name) or previous.get("scenarios", {}).get(name) for name in SCENARIOS}
    doc = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": next(
            (d["machine"] for d in docs.values() if d and "machine" in d), previous.get("machine", {})
        ),
        "targets": targets(docs),
        "scenarios": {
            name: {"args": d["args"], "summary": d["summary"], "created": d["created"]}
            for name, d in docs.items()
            if d
        },
    }
    (RESULTS / "summary.json").write_text(json.dumps(doc, indent=1))
    text = markdown(doc)
    if args.md:
        args.md.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
