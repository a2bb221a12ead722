"""The `livewall` command: demo with --json, serve from environment variables, rooms create, help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server.cli.serve import uvicorn_config
from server.config import Settings
from tests.helpers import REPO, free_port, spawn, wait_ready


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=60
    )


def test_help_lists_every_command() -> None:
    """`livewall --help` names serve, demo, rooms and migrate; each subcommand has its own help."""
    out = _run("--help").stdout
    for name in ("serve", "demo", "rooms", "migrate"):
        assert name in out
    assert "--redis-url" in _run("serve", "--help").stdout
    assert "--json" in _run("demo", "--help").stdout


def test_demo_json_prints_links_then_serves(tmp_path: Path) -> None:
    """`demo --json --port 0` prints one JSON object first, and every link it prints works."""
    with spawn(["demo", "--json", "--port", "0", "--data-dir", str(tmp_path)]) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        links = json.loads(line)
        assert set(links) == {"room", "host_url", "screen_url", "viewer_url", "api_base"}
        base = links["api_base"].removesuffix("/api")
        wait_ready(base)
        assert httpx.get(links["viewer_url"]).status_code == 200
        assert httpx.get(links["screen_url"]).status_code == 200
        info = httpx.get(f"{links['api_base']}/rooms/{links['room']}").json()
        assert info["status"] == "scheduled"
        key = links["host_url"].split("#key=")[1]
        login = httpx.post(f"{base}/host/{links['room']}/login", data={"key": key})
        assert login.status_code == 303 and login.headers["location"] == f"/host/{links['room']}"
        token = httpx.post(f"{links['api_base']}/rooms/{links['room']}/host-token", json={"key": key}).json()
        assert "token" in token
    assert (tmp_path / "livewall.db").exists()  # embedded default: SQLite in the data dir


def test_demo_room_has_sample_products(tmp_path: Path) -> None:
    """The demo room comes with a few sample products on its shelf."""
    import asyncio

    from server.rooms.actions import room_products
    from server.storage import Database

    with spawn(["demo", "--json", "--port", "0", "--data-dir", str(tmp_path)]) as proc:
        assert proc.stdout is not None
        links = json.loads(proc.stdout.readline())
    db = Database(f"sqlite:///{tmp_path / 'livewall.db'}")

    async def count() -> int:
        try:
            return len(await room_products(db, links["room"]))
        finally:
            await db.dispose()

    assert asyncio.run(count()) >= 3


def test_serve_reads_environment(tmp_path: Path) -> None:
    """`serve` takes its port, data dir and secret from LIVEWALL_* variables."""
    port = free_port()
    env = {"LIVEWALL_PORT": str(port), "LIVEWALL_DATA_DIR": str(tmp_path), "LIVEWALL_SECRET_KEY": "k"}
    with spawn(["serve"], env=env):
        wait_ready(f"http://127.0.0.1:{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok"
    assert (tmp_path / "livewall.db").exists()
    assert not (tmp_path / "secret.key").exists()  # the given secret is used, none generated


def test_serve_json_prints_the_bound_address_then_serves(tmp_path: Path) -> None:
    """`serve --json --port 0` prints one JSON line with the port it bound, and every link answers."""
    with spawn(["serve", "--json", "--port", "0", "--data-dir", str(tmp_path)]) as proc:
        assert proc.stdout is not None
        printed = json.loads(proc.stdout.readline())
        assert set(printed) == {"url", "host", "port", "api_base", "healthz", "readyz", "metrics"}
        assert isinstance(printed["port"], int) and printed["port"] > 0
        assert printed["url"] == f"http://127.0.0.1:{printed['port']}"
        wait_ready(printed["url"])
        for key in ("healthz", "readyz", "metrics", "api_base"):
            assert httpx.get(printed[key]).status_code == 200, key


def test_rooms_create_prints_working_links(tmp_path: Path) -> None:
    """`rooms create --json` creates a room whose links work once the server runs on the same data."""
    port = free_port()
    created = _run(
        "rooms",
        "create",
        "--title",
        "周末特卖",
        "--json",
        "--data-dir",
        str(tmp_path),
        "--public-url",
        f"http://127.0.0.1:{port}",
    )
    assert created.returncode == 0, created.stderr
    links = json.loads(created.stdout)
    assert links["viewer_url"] == f"http://127.0.0.1:{port}/r/{links['room']}"
    listing = _run("rooms", "list", "--data-dir", str(tmp_path)).stdout
    assert links["room"] in listing and "周末特卖" in listing
    with spawn(["serve", "--port", str(port), "--data-dir", str(tmp_path)]):
        wait_ready(f"http://127.0.0.1:{port}")
        assert httpx.get(links["screen_url"]).status_code == 200
        ok = httpx.post(
            f"http://127.0.0.1:{port}/api/rooms/{links['room']}/host-token", json={"key": links["host_key"]}
        )
        assert ok.status_code == 200


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    """An unsupported database URL exits with status 2 and says why."""
    result = _run("rooms", "list", "--data-dir", str(tmp_path), "--database-url", "mysql://x/y")
    assert result.returncode == 2
    assert "unsupported database URL" in result.stderr


def test_logs_are_json_lines(tmp_path: Path) -> None:
    """`serve` writes structured logs: one JSON object per line on stderr."""
    port = free_port()
    with spawn(["serve", "--port", str(port), "--data-dir", str(tmp_path)]) as proc:
        wait_ready(f"http://127.0.0.1:{port}")
        proc.terminate()
        _out, err = proc.communicate(timeout=15)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]
    assert all({"levelname", "name", "message"} <= set(r) for r in records)
    assert any("startup complete" in r["message"].lower() for r in records)


def test_server_pings_each_websocket_once_a_minute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn pings every 60 s by default (the clients' heartbeat keeps connections open), and
    LIVEWALL_WS_PING_SECS changes it; the other WebSocket choices stay."""
    config = uvicorn_config(object(), Settings(data_dir=tmp_path))
    assert config.ws_ping_interval == 60.0 and config.ws_per_message_deflate is False
    monkeypatch.setenv("LIVEWALL_WS_PING_SECS", "15")
    assert uvicorn_config(object(), Settings.from_env(data_dir=tmp_path)).ws_ping_interval == 15.0


def test_rooms_rotate_key_replaces_the_host_key(tmp_path: Path) -> None:
    """`rooms rotate-key ROOM` prints a new key that logs in; the old key and its sessions stop working."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = ["--data-dir", str(tmp_path)]
    created = json.loads(_run("rooms", "create", "--title", "Keys", "--json", *data).stdout)
    with spawn(["serve", "--port", str(port), *data]):
        wait_ready(base)
        login = f"{base}/api/rooms/{created['room']}/host-token"
        old_token = httpx.post(login, json={"key": created["host_key"]}).json()["token"]
        rotated = _run("rooms", "rotate-key", created["room"], "--json", "--public-url", base, *data)
        assert rotated.returncode == 0, rotated.stderr
        out = json.loads(rotated.stdout)
        assert out["room"] == created["room"] and out["host_key"] != created["host_key"]
        assert out["host_url"] == f"{base}/host/{created['room']}/login#key={out['host_key']}"
        assert httpx.post(login, json={"key": created["host_key"]}).json()["error"]["code"] == "bad_key"
        assert httpx.post(login, json={"key": out["host_key"]}).status_code == 200
        start = httpx.post(
            f"{base}/api/rooms/{created['room']}/start", headers={"authorization": f"Bearer {old_token}"}
        )
        assert start.status_code == 401 and start.json()["error"]["code"] == "revoked"
    text = _run("rooms", "rotate-key", created["room"], *data).stdout
    assert "new host key" in text and "logged out" in text


def test_rooms_rotate_key_of_an_unknown_room_is_a_clear_error(tmp_path: Path) -> None:
    """An unknown room exits with status 2 and says so."""
    result = _run("rooms", "rotate-key", "no-such-room", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "no room 'no-such-room'" in result.stderr
