"""The benchmark runs end to end at tiny scale, so it cannot rot (not timed; ``-m bench`` selects it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import run

pytestmark = [pytest.mark.bench, pytest.mark.timeout(300)]

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

FIELDS = (
    "server",
    "viewers",
    "run",
    "lat_ms",
    "deliveries_per_s",
    "loss",
    "gaps",
    "server_cpu_pct",
    "kib_per_conn",
    "connect_s",
    "sent",
)


def _run(tmp_path: Path, *argv: str) -> dict:
    out = tmp_path / "result.json"
    assert run.main([*argv, "--out", str(out)]) == 0
    return json.loads(out.read_text())


@needs_node
def test_fanout_livewall_and_socketio(tmp_path: Path) -> None:
    """Fan-out with churn against Livewall and python-socketio: every field, no loss, no gap."""
    doc = _run(
        tmp_path,
        "fanout",
        "--viewers",
        "20",
        "--duration",
        "1",
        "--runs",
        "1",
        "--churn",
        "0.2",
        "--servers",
        "livewall,socketio",
    )
    assert {r["server"] for r in doc["runs"]} == {"livewall", "socketio"}
    for row in doc["runs"]:
        for field in FIELDS:
            assert field in row, field
        assert row["sent"] >= 5
        assert row["loss"] == 0 and row["gaps"] == 0, row
        assert row["lat_ms"]["p99"] is not None
    assert any("p99_x_better_than_socketio" in m for m in doc["summary"])


@needs_node
def test_blast_and_comments_naive_and_livewall(tmp_path: Path) -> None:
    """Blast runs against Livewall and the naive loop without loss; the host sees every comment."""
    doc = _run(
        tmp_path, "blast", "--viewers", "20", "--duration", "1", "--runs", "1", "--servers", "livewall,naive"
    )
    assert all(r["loss"] == 0 and r["gaps"] == 0 and r["deliveries_per_s"] > 0 for r in doc["runs"])
    doc = _run(
        tmp_path,
        "comments",
        "--viewers",
        "20",
        "--duration",
        "1",
        "--runs",
        "1",
        "--comments",
        "50",
        "--servers",
        "livewall",
    )
    row = doc["runs"][0]
    assert row["loss"] == 0 and row["gaps"] == 0, row
    assert row["items_acked"] > 0 and row["host_items_lost"] == 0, row
    assert row["host_item_ms"]["p99"] is not None and row["screen_frames_per_s"] > 0, row


@needs_node
@needs_redis
def test_reconnect_storm_resumes_without_gap(tmp_path: Path) -> None:
    """After a server restart every viewer comes back resumed, with no gap."""
    doc = _run(tmp_path, "reconnect", "--viewers", "20", "--duration", "1", "--runs", "1")
    row = doc["runs"][0]
    assert row["not_back"] == 0 and row["resume_failed"] == 0 and row["gaps"] == 0, row
    assert row["resumed"] >= 20


@needs_node
@needs_redis
def test_two_processes_share_redis(tmp_path: Path) -> None:
    """Viewers split over two Livewall processes all get every announcement."""
    doc = _run(tmp_path, "redis2", "--viewers", "20", "--duration", "1", "--runs", "1")
    row = doc["runs"][0]
    assert row["loss"] == 0 and row["gaps"] == 0 and row["viewers"] == 20


def _assert_exact_claims(doc: dict, viewers: int, units: int) -> None:
    for row in doc["runs"]:
        assert row["successes"] == units and row["refusals"] == {"sold_out": viewers - units}, row
        assert row["oversell"] == 0 and row["db_oversell"] == 0 and row["db_reserved"] == units, row
        assert row["duplicate_codes"] == 0 and row["unanswered"] == 0 and row["correct"], row
        assert row["claim_ms"]["p99"] is not None


@needs_node
def test_claim_rush_embedded(tmp_path: Path) -> None:
    """A claim rush on the embedded defaults sells exactly the units, as the answers and the database say."""
    doc = _run(tmp_path, "claim", "--viewers", "200", "--units", "20", "--runs", "1", "--configs", "embedded")
    _assert_exact_claims(doc, 200, 20)
    assert doc["summary"][0]["all_correct"] is True


@needs_node
@needs_redis
def test_claim_rush_two_processes_on_redis(tmp_path: Path) -> None:
    """A claim rush over two processes sharing Redis sells exactly the units; Redis and the database agree."""
    doc = _run(tmp_path, "claim", "--viewers", "200", "--units", "20", "--runs", "1", "--configs", "redis2")
    _assert_exact_claims(doc, 200, 20)
    assert doc["runs"][0]["processes"] == 2 and doc["runs"][0]["redis_matches_db"] is True


@needs_node
def test_the_load_generators_websocket_client(tmp_path: Path) -> None:
    """bench/loadgen/rawws.test.mjs: the viewers' minimal WebSocket client against exact server bytes."""
    import subprocess

    loadgen = Path(run.__file__).parent / "loadgen"
    done = subprocess.run(
        ["node", "--test", "rawws.test.mjs"], cwd=loadgen, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


@needs_node
def test_flood_beside_quiet_viewers(tmp_path: Path) -> None:
    """The flood scenario: a calm and a flooded window on the same viewers, both measured, no loss;
    the flooder wrote far more frames than the server answered."""
    doc = _run(tmp_path, "flood", "--viewers", "20", "--duration", "1", "--runs", "1")
    row = doc["runs"][0]
    for window in ("calm", "flood"):
        assert row[window]["loss"] == 0 and row[window]["gaps"] == 0, row[window]
        assert row[window]["lat_ms"]["p99"] is not None
    assert row["p99_ratio"] is not None
    flooder = row["flooder"]
    assert flooder["frames_sent"] > 10 * max(1, flooder["pongs"]), flooder
    assert doc["summary"][0]["target_ratio"] == 1.5
