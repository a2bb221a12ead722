"""A plain (non-editable) wheel carries the templates, static files and migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel (once for this module)."""
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return next(out.glob("livewall-*.whl"))


def test_wheel_contains_surfaces_and_migrations(wheel: Path) -> None:
    """`pip wheel .` builds a wheel with every surface's files and the Alembic scripts inside the package."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "server/_web/static/templates/viewer.html",
        "server/_web/static/js/realtime.js",
        "server/_web/static/i18n/zh-CN.json",
        "server/_web/screen/templates/screen.html",
        "server/_web/screen/screen.js",
        "server/_web/host_console/templates/console.html",
        "server/_web/host_console/console.js",
        "server/storage/migrations/env.py",
        "server/storage/migrations/versions/0001_initial_schema.py",
    ):
        assert needed in names, f"{needed} missing from the wheel"
    assert not any("__pycache__" in n for n in names)


def test_installed_wheel_serves_every_surface(wheel: Path, tmp_path: Path) -> None:
    """The wheel, installed on its own (no repository beside it), serves pages, scripts and the QR code."""
    import json
    import os

    import httpx

    from tests.helpers import spawn, wait_ready

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    env = {"PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    probe = subprocess.run(
        [sys.executable, "-c", "import server.web as w; print(w.web_root())"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=tmp_path,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(site)), probe.stdout  # the installed copy, not the repo
    with spawn(
        ["demo", "--json", "--port", "0", "--data-dir", str(tmp_path / "data")], env=env, cwd=tmp_path
    ) as proc:
        assert proc.stdout is not None
        links = json.loads(proc.stdout.readline())
        base = links["api_base"].removesuffix("/api")
        wait_ready(base)
        for url in (
            links["viewer_url"],
            links["screen_url"],
            f"{base}/host/{links['room']}/login",
            f"{base}/static/js/realtime.js",
            f"{base}/screen-assets/screen.js",
            f"{base}/console-assets/console.js",
            f"{links['viewer_url']}/qr.svg",
        ):
            assert httpx.get(url).status_code == 200, url
