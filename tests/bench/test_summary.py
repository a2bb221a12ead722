"""bench.summary: targets from the scenario files, earlier entries kept for scenarios not re-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import summary


def _comments(p99: float, created: str) -> dict[str, object]:
    row = {"server": "livewall", "viewers": 5000, "host_items_lost": 0, "host_item_ms.p99": p99}
    return {"args": {}, "summary": [row], "created": created, "machine": {"cpus": 2}}


def test_a_rerun_replaces_only_its_own_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "RESULTS", tmp_path)
    idle = {"server": "livewall", "viewers": 10000, "kib_per_conn": 17.8}
    previous = {
        "machine": {"cpus": 2},
        "scenarios": {
            "idle": {"args": {}, "summary": [idle], "created": "earlier"},
            "comments": _comments(1418.0, "earlier"),
        },
    }
    (tmp_path / "summary.json").write_text(json.dumps(previous))
    (tmp_path / "comments.json").write_text(json.dumps(_comments(474.7, "now")))
    assert summary.main([]) == 0
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["scenarios"]["idle"]["created"] == "earlier"
    assert doc["scenarios"]["comments"]["created"] == "now"
    met = {t["target"].split(")")[0] + ")": t["met"] for t in doc["targets"]}
    assert met["(issue 5)"] is True and met["(d)"] is True
