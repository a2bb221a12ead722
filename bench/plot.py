"""p99 delivery latency against viewers, Livewall and the peers: bench/results/p99_vs_viewers.png.

    python -m bench.plot [bench/results/fanout.json] [-o bench/results/p99_vs_viewers.png]

Points are medians over the runs; the bars span the fastest and slowest run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results"
STYLE = {
    "livewall": ("Livewall", "#d9480f", "o"),
    "naive": ("Starlette naive send loop", "#1c7ed6", "s"),
    "socketio": ("python-socketio 5", "#5f3dc4", "^"),
}


def plot(source: Path, out: Path) -> Path:
    doc = json.loads(source.read_text())
    rows = doc["runs"]
    rate = doc["args"].get("rate", 10)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for server, (label, color, marker) in STYLE.items():
        by_n: dict[int, list[float]] = {}
        for row in rows:
            p99 = (row.get("lat_ms") or {}).get("p99")
            if row["server"] == server and p99 is not None:
                by_n.setdefault(row["viewers"], []).append(p99)
        if not by_n:
            continue
        ns = sorted(by_n)
        med = [sorted(by_n[n])[len(by_n[n]) // 2] for n in ns]
        lo = [m - min(by_n[n]) for m, n in zip(med, ns, strict=True)]
        hi = [max(by_n[n]) - m for m, n in zip(med, ns, strict=True)]
        ax.errorbar(ns, med, yerr=[lo, hi], label=label, color=color, marker=marker, capsize=3, linewidth=1.8)
    ax.axhline(250, color="#868e96", linestyle="--", linewidth=1)
    ax.text(ax.get_xlim()[0], 262, " target: p99 < 250 ms at 10,000 viewers", color="#495057", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("viewers in one room (one server process)")
    ax.set_ylabel("p99 delivery latency, ms (log)")
    ax.set_title(f"Host broadcast to every viewer, {rate:g}/s, 2-core machine", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plot", description=__doc__)
    p.add_argument("source", nargs="?", type=Path, default=RESULTS / "fanout.json")
    p.add_argument("-o", "--out", type=Path, default=RESULTS / "p99_vs_viewers.png")
    args = p.parse_args(argv)
    print(f"wrote {plot(args.source, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
