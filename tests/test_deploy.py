"""deploy/: the image and the compose topology are what the README promises, checked without a Docker
engine (the compose file is read with PyYAML; `docker compose config` runs too where it exists)."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.config import Settings
from tests.helpers import REPO

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
SETTINGS = {f"LIVEWALL_{f.name.upper()}" for f in fields(Settings)}
# What every Livewall process must agree on (README, "Scaling out").
SHARED = ("LIVEWALL_SECRET_KEY", "LIVEWALL_DATABASE_URL", "LIVEWALL_REDIS_URL", "LIVEWALL_PUBLIC_URL")
# Values for the blanks of .env.example, so that `docker compose config` can fill every variable.
FILLED = {"LIVEWALL_SECRET_KEY": "deploy-test-secret", "POSTGRES_PASSWORD": "deploytest"}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _running(command: str) -> dict[str, dict[str, Any]]:
    """The services whose command is ``livewall <command>``."""
    return {
        name: service
        for name, service in _services().items()
        if service.get("command", [])[:2] == ["livewall", command]
    }


def _livewall_processes() -> dict[str, dict[str, Any]]:
    return _running("serve") | _running("worker")


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment is written as a mapping"
    return {key: str(value) for key, value in env.items()}


@dataclass
class Instruction:
    keyword: str
    args: str


def _dockerfile() -> list[Instruction]:
    """deploy/Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [
        line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append(Instruction(keyword.upper(), args.strip()))
    return out


def _copied_sources() -> list[str]:
    """What the Dockerfile copies from the build context (not from another stage)."""
    sources = []
    for ins in _dockerfile():
        if ins.keyword == "COPY" and "--from=" not in ins.args:
            words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
            sources += words[:-1]
    return sources


def test_compose_runs_two_servers_a_worker_redis_and_postgres() -> None:
    """Two or more `livewall serve`, a `livewall worker`, Redis, PostgreSQL and the proxy in front."""
    services = _services()
    assert len(_running("serve")) >= 2
    assert len(_running("worker")) >= 1
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["proxy"]["image"].startswith("caddy:")
    for name in _livewall_processes():
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name


def test_compose_sets_only_real_settings() -> None:
    """Every LIVEWALL_* name in deploy/ (compose, .env.example, Caddyfile, Dockerfile) is a setting."""
    for path in (p for p in DEPLOY.iterdir() if p.is_file()):
        for name in set(re.findall(r"LIVEWALL_[A-Z0-9_]+", path.read_text())):
            assert name in SETTINGS, f"{path.name}: {name} is not a Livewall setting"


def test_every_process_shares_secret_database_redis_and_data() -> None:
    """Every Livewall process has the same secret, database, Redis, public URL and data volume."""
    processes = _livewall_processes()
    envs = [_env(service) for service in processes.values()]
    for key in SHARED:
        assert len({env.get(key) for env in envs}) == 1, f"{key} differs between processes"
    first = envs[0]
    assert first["LIVEWALL_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in first["LIVEWALL_DATABASE_URL"]
    assert first["LIVEWALL_REDIS_URL"].startswith("redis://redis:6379/")
    data_dir = next(
        word.split("=", 1)[1]
        for ins in _dockerfile()
        if ins.keyword == "ENV"
        for word in shlex.split(ins.args)
        if word.startswith("LIVEWALL_DATA_DIR=")
    )
    volumes = {tuple(service["volumes"]) for service in processes.values()}
    assert len(volumes) == 1
    (mounts,) = volumes
    assert any(m.endswith(f":{data_dir}") and not m.startswith((".", "/")) for m in mounts), mounts


def test_servers_leave_followup_to_the_worker() -> None:
    """With a worker in the topology, the servers run with LIVEWALL_FOLLOWUP_EMBEDDED=false."""
    for name, service in _running("serve").items():
        assert _env(service)["LIVEWALL_FOLLOWUP_EMBEDDED"] == "false", name


def test_secrets_are_required_and_listed_in_the_env_example() -> None:
    """Secret key, database password and public URL have no default; .env.example lists all variables."""
    text = COMPOSE.read_text()
    for name in ("LIVEWALL_SECRET_KEY", "POSTGRES_PASSWORD", "LIVEWALL_PUBLIC_URL"):
        uses = re.findall(rf"\$\{{{name}([^}}]*)\}}", text)
        assert uses and all(use.startswith(":?") for use in uses), f"{name} must be required: {uses}"
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.M))
    read = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert read - listed == set(), f"read by compose.yaml but not in .env.example: {sorted(read - listed)}"
    assert set(FILLED) <= listed


def test_services_wait_for_healthy_database_and_redis() -> None:
    """Livewall processes start once PostgreSQL and Redis pass their health checks."""
    services = _services()
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    for name, service in _livewall_processes().items():
        for needed in ("postgres", "redis"):
            assert service["depends_on"][needed] == {"condition": "service_healthy"}, (name, needed)


def test_proxy_balances_over_every_server_without_stickiness() -> None:
    """Caddy serves the public URL and balances over exactly the serve services, health-checked, unsticky."""
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    (upstreams,) = re.findall(r"^\s*reverse_proxy\s+([^{\n]*)", caddyfile, flags=re.M)
    servers = _running("serve")
    ports = {s["command"][s["command"].index("--port") + 1] for s in servers.values()}
    assert set(upstreams.split()) == {f"{name}:{port}" for name in servers for port in ports}
    assert not re.search(r"lb_policy\s+(cookie|ip_hash|client_ip_hash|header)", caddyfile)
    (health,) = re.findall(r"health_uri\s+(\S+)", caddyfile)
    assert health in ("/healthz", "/readyz")
    proxy = _services()["proxy"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    # The site Caddy serves is the address phones are given.
    assert "{$LIVEWALL_PUBLIC_URL}" in caddyfile
    app = _env(next(iter(servers.values())))
    assert _env(proxy)["LIVEWALL_PUBLIC_URL"] == app["LIVEWALL_PUBLIC_URL"]


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    """Slim Python base, a non-root USER, a HEALTHCHECK on /healthz, port 8000, `livewall serve`."""
    instructions = _dockerfile()
    bases = [ins.args.split()[0] for ins in instructions if ins.keyword == "FROM"]
    assert all(re.fullmatch(r"python:(\$\{PYTHON_VERSION\}|3\.1[1-9])-slim", base) for base in bases), bases
    users = [ins.args for ins in instructions if ins.keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    (health,) = [ins.args for ins in instructions if ins.keyword == "HEALTHCHECK"]
    assert "urllib.request" in health and "/healthz" in health
    assert [ins.args for ins in instructions if ins.keyword == "EXPOSE"] == ["8000"]
    cmd = [ins.args for ins in instructions if ins.keyword == "CMD"][-1]
    assert json.loads(cmd) == ["livewall", "serve", "--host", "0.0.0.0", "--port", "8000"]


def test_dockerfile_installs_with_the_constraints() -> None:
    """Every pip install in the image is pinned by constraints.txt, which the image copies."""
    installs = [
        part
        for ins in _dockerfile()
        if ins.keyword == "RUN"
        for part in ins.args.split("&&")
        if "pip install" in part
    ]
    assert installs
    for part in installs:
        assert "-c constraints.txt" in part, part
    assert "constraints.txt" in _copied_sources()


def test_dockerfile_copies_only_what_exists() -> None:
    """Every path the Dockerfile copies from the build context (the repository root) exists."""
    sources = _copied_sources()
    assert {"pyproject.toml", "server", "screen", "host_console", "static"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"deploy/Dockerfile copies {source}, which is not in the repository"


def test_copied_files_build_the_wheel(tmp_path: Path) -> None:
    """The files the Dockerfile copies, and nothing else, are enough to build the wheel."""
    context = tmp_path / "context"
    context.mkdir()
    for source in _copied_sources():
        path = REPO / source
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, context / source)
    built = subprocess.run(
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
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    assert list(tmp_path.glob("livewall-*.whl"))


@functools.cache
def _docker_compose() -> str | None:
    """Why `docker compose` cannot be used here, or None when it can."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    return None if probe.returncode == 0 else "the docker compose plugin is not installed"


def _compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    reason = _docker_compose()
    if reason is not None:
        pytest.skip(reason)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEWALL_", "POSTGRES_"))}
    return subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


def test_docker_compose_config_accepts_the_file() -> None:
    """`docker compose config` parses compose.yaml with .env.example's blanks filled."""
    checked = _compose_config(FILLED)
    assert checked.returncode == 0, checked.stderr


def test_docker_compose_config_refuses_a_missing_secret() -> None:
    """Without a secret key (.env.example leaves it blank), compose stops and names the variable."""
    checked = _compose_config({"POSTGRES_PASSWORD": FILLED["POSTGRES_PASSWORD"]})
    assert checked.returncode != 0
    assert "LIVEWALL_SECRET_KEY" in checked.stderr
