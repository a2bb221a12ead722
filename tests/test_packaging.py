"""A plain (non-editable) wheel carries the templates, static files and migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import REPO


def test_wheel_contains_surfaces_and_migrations(tmp_path: Path) -> None:
    """`pip wheel .` builds a wheel with every surface's files and the Alembic scripts inside the package."""
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
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    wheel = next(tmp_path.glob("livewall-*.whl"))
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
