"""A/B: the same benchmark on two checkouts of Livewall, interleaved in one session.

A refactor must not cost speed: ``before`` is a checkout of the earlier commit (a git worktree with
its own venv), ``after`` is this one. Each round runs the scenario once on each side, alternating
which goes first, so both see the same machine over the same minutes; the table gives each side's
medians over the rounds and after/before.

    git worktree add /tmp/before REF && (cd /tmp/before && python3 -m venv .venv &&
        .venv/bin/pip install -c constraints.txt -e '.[test]' && (cd bench/loadgen && npm ci))
    python -m bench.ab --before /tmp/before --rounds 3 -- fanout --viewers 5000 --rate 10
    python -m bench.ab --before /tmp/before --rounds 3 -- claim --viewers 10000 --configs embedded

Everything after ``--`` goes to ``python -m bench.run`` on both sides (``--runs 1 --servers
livewall`` and ``--out`` are added). Prints a table and writes bench/results/ab_SCENARIO.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
# Figures compared when a side's summary has them (lower is better unless named in HIGHER).
METRICS = (
    "lat_ms.p50",
    "lat_ms.p99",
    "deliveries_per_s",
    "server_cpu_pct",
    "kib_per_conn",
    "comment_rtt_ms.p99",
    "host_item_ms.p99",
    "all_back_s",
    "claim_ms.p50",
    "claim_ms.p99",
    "claims_per_s",
    "quiet_p99_ms",
)
HIGHER = {"deliveries_per_s", "claims_per_s"}


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def run_side(checkout: Path, scenario_args: list[str], out: Path) -> list[dict[str, float]]:
    """One run of the scenario on ``checkout`` (with its own .venv); its summary rows, flattened."""
    python = checkout / ".venv" / "bin" / "python"
    argv = [str(python), "-m", "bench.run", *scenario_args, "--runs", "1", "--servers", "livewall"]
    argv += ["--out", str(out)]
    subprocess.run(argv, cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    doc = json.loads(out.read_text())
    return [_flatten(row) for row in doc["summary"]]


def _key(row: dict[str, float], raw: dict[str, Any]) -> str:
    return " ".join(f"{k}={raw[k]}" for k in ("viewers", "config") if k in raw)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, required=True, help="checkout of the earlier commit, with .venv")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("scenario", nargs=argparse.REMAINDER, help="-- SCENARIO [bench.run options]")
    args = p.parse_args(argv)
    scenario_args = [a for a in args.scenario if a != "--"]
    if not scenario_args:
        p.error("give the scenario after --")
    sides = {"before": args.before.resolve(), "after": REPO}
    got: dict[str, dict[str, dict[str, list[float]]]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory(prefix="livewall-ab-") as tmp:
        for i in range(args.rounds):
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            for side in order:
                out = Path(tmp) / f"{side}-{i}.json"
                started = time.monotonic()
                rows = run_side(sides[side], scenario_args, out)
                raw = json.loads(out.read_text())["summary"]
                for row, raw_row in zip(rows, raw, strict=True):
                    bucket = got[side].setdefault(_key(row, raw_row), {})
                    for metric in METRICS:
                        if metric in row:
                            bucket.setdefault(metric, []).append(row[metric])
                print(f"round {i + 1} {side}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    table: list[dict[str, Any]] = []
    for key in got["after"]:
        for metric, values in got["after"][key].items():
            before = got["before"].get(key, {}).get(metric)
            if not before:
                continue
            b, a = statistics.median(before), statistics.median(values)
            table.append(
                {
                    "case": key,
                    "metric": metric,
                    "before": round(b, 2),
                    "after": round(a, 2),
                    "after_over_before": round(a / b, 3) if b else None,
                    "better": (a >= b) if metric in HIGHER else (a <= b),
                    "before_runs": before,
                    "after_runs": values,
                }
            )
    print(f"\nA/B {' '.join(scenario_args)}: medians of {args.rounds} interleaved round(s)\n")
    print(f"{'case':<16} {'metric':<20} {'before':>10} {'after':>10} {'after/before':>13}")
    for row in table:
        print(
            f"{row['case']:<16} {row['metric']:<20} {row['before']:>10} {row['after']:>10} "
            f"{row['after_over_before']!s:>13}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"ab_{scenario_args[0]}.json"
    path.write_text(json.dumps({"scenario": scenario_args, "rounds": args.rounds, "rows": table}, indent=1))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
