"""A bare `pip install .` has everything the server imports, the lock file agrees with pyproject.toml,
and a library outside the supported versions stops the server with one clear sentence."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from server import cli, compat
from tests.helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# Needed at run time but imported by a library, not by name in server/ (the first wave shipped
# without greenlet: SQLAlchemy's async engine imports it only when a session starts).
RUNTIME_ONLY = {
    "greenlet": "sqlalchemy[asyncio]",
    "uvloop": "uvicorn[standard]",
    "httptools": "uvicorn[standard]",
}


def _closure(requirements: Iterable[Requirement]) -> set[str]:
    """Every distribution a set of requirements installs, extras and markers evaluated as pip would."""
    seen: set[str] = set()
    todo = [(req, frozenset(req.extras)) for req in requirements]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen and not extras:
            continue
        seen.add(name)
        for line in metadata.requires(req.name) or []:
            sub = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append((sub, frozenset(sub.extras)))
    return seen


def _runtime_requirements() -> list[Requirement]:
    return [Requirement(line) for line in PYPROJECT["dependencies"]]


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"server", "__future__"}


def test_every_import_of_the_server_comes_with_a_bare_install() -> None:
    """Each third-party module server/ imports belongs to a distribution `pip install .` installs."""
    closure = _closure(_runtime_requirements())
    owners = metadata.packages_distributions()
    for module in sorted(_imported_top_levels()):
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        assert dists, f"server/ imports {module!r}, which no installed distribution provides"
        assert dists & closure, (
            f"server/ imports {module!r} ({sorted(dists)}), not in the runtime dependencies"
        )


@pytest.mark.parametrize("needed", sorted(RUNTIME_ONLY))
def test_libraries_loaded_only_by_other_libraries_come_too(needed: str) -> None:
    """greenlet, uvloop and httptools are installed without any extra of ours."""
    assert needed in _closure(_runtime_requirements()), f"{needed} needs {RUNTIME_ONLY[needed]}"


def _pins() -> dict[str, tuple[Version, Requirement]]:
    pins: dict[str, tuple[Version, Requirement]] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        (spec,) = req.specifier
        assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = (Version(spec.version), req)
    return pins


@pytest.mark.parametrize(
    "line", [*PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"]["test"]], ids=lambda s: s
)
def test_the_lock_pins_every_requirement_within_its_bounds(line: str) -> None:
    """constraints.txt pins each dependency of pyproject.toml to a version its specifier allows."""
    req = Requirement(line)
    pins = _pins()
    name = canonicalize_name(req.name)
    assert name in pins, f"{req.name} is not pinned in constraints.txt; refresh it (README: Development)"
    assert req.specifier.contains(pins[name][0], prereleases=True), (
        f"constraints.txt pins {req.name}=={pins[name][0]}, outside {req.specifier}; refresh it"
    )


def test_the_lock_pins_what_is_installed_for_the_guarded_libraries() -> None:
    """The suite runs on the locked versions of the libraries whose internals we rely on."""
    pins = _pins()
    for name in compat.GUARDED:
        assert Version(metadata.version(name)) == pins[name][0], (
            f"{name}: installed is not the locked version"
        )


def test_an_unsupported_version_is_named_with_the_range_and_the_fix() -> None:
    """A uvicorn past the bound is reported with its version, the supported range and how to fix it."""
    reqs = [Requirement("uvicorn[standard]>=0.35,<0.56"), Requirement("websockets>=14,<18")]
    found = compat.problems(reqs, {"uvicorn": "0.60.1", "websockets": "17.4"}.get, ("uvicorn", "websockets"))
    assert found == [
        "uvicorn 0.60.1 is installed, but Livewall supports uvicorn<0.56,>=0.35 (it relies on that version's "
        "internals)"
    ]
    assert (
        compat.problems(reqs, {"uvicorn": "0.55.0", "websockets": "14.0"}.get, ("uvicorn", "websockets"))
        == []
    )
    missing = compat.problems(reqs, {}.get, ("websockets",))
    assert missing == ["websockets is not installed; Livewall needs websockets<18,>=14"]


def test_the_cli_stops_on_an_unsupported_version_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`livewall serve` on an unsupported uvicorn exits 2 with one `livewall: ...` line, before serving."""
    real = compat._installed
    monkeypatch.setattr(compat, "_installed", lambda name: "0.99.0" if name == "uvicorn" else real(name))
    # Imported afresh, so the guard runs as it does at a start.
    monkeypatch.delitem(sys.modules, "server.realtime.uvicorn_ws", raising=False)
    assert cli.main(["serve", "--port", "0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"livewall: uvicorn 0\.99\.0 is installed, but Livewall supports uvicorn\S+ .*"
        r"`pip install -c constraints\.txt \.`",
        err,
    ), err


def test_the_declared_bounds_are_what_the_guard_checks() -> None:
    """The installed metadata the guard reads carries pyproject.toml's bounds for every guarded library."""
    declared = {canonicalize_name(Requirement(r).name): Requirement(r) for r in PYPROJECT["dependencies"]}
    read = {canonicalize_name(r.name): r for r in compat._declared()}
    for name in compat.GUARDED:
        assert declared[name].specifier, f"{name} has no bound in pyproject.toml"
        assert read[name].specifier == declared[name].specifier, f"reinstall: {name}'s metadata is stale"
