"""`livewall users create|list|set-password` and `livewall orgs create|list`: the first account is
made from the command line and signs in to the studio of a server on the same data dir."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import make_settings
from tests.helpers import REPO, serve

PASSWORD = "first owner password"


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_the_first_admin_is_made_listed_and_signs_in(tmp_path: Path) -> None:
    """`users create --admin --password-stdin`: an admin owner of the default organisation, listed by
    `users list`, who signs in to a server on that data dir; a second account with the same email
    and a weak password are refused."""
    data = ["--data-dir", str(tmp_path), "--secret-key", "test-secret"]
    made = run(
        "users",
        "create",
        "--email",
        "Boss@Example.com",
        "--admin",
        "--password-stdin",
        "--json",
        *data,
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) | {"id": "x"} == {
        "id": "x",
        "email": "boss@example.com",
        "org": "default",
        "role": "owner",
    }
    listed = run("users", "list", *data)
    assert "boss@example.com\tboss\tdefault:owner\tadmin" in listed.stdout
    again = run(
        "users", "create", "--email", "boss@example.com", "--password-stdin", *data, stdin=PASSWORD + "\n"
    )
    assert again.returncode == 2 and "exists" in again.stderr
    weak = run("users", "create", "--email", "x@example.com", "--password-stdin", *data, stdin="short\n")
    assert weak.returncode == 2 and "password" in weak.stderr

    async def sign_in() -> int:
        async with (
            serve(make_settings(tmp_path)) as running,
            httpx.AsyncClient(base_url=running.base) as http,
        ):
            r = await http.post("/studio/signin", data={"email": "boss@example.com", "password": PASSWORD})
            return r.status_code

    assert asyncio.run(sign_in()) == 303


def test_orgs_and_members_and_new_passwords(tmp_path: Path) -> None:
    """`orgs create` makes an organisation; `users create --org --role` joins it; `users set-password`
    replaces the password; an unknown organisation or account is refused."""
    data = ["--data-dir", str(tmp_path)]
    org = run("orgs", "create", "Shop Two", *data)
    assert org.returncode == 0 and "shop-two" in org.stdout
    assert "shop-two\tShop Two" in run("orgs", "list", *data).stdout
    made = run(
        "users",
        "create",
        "--email",
        "mod@example.com",
        "--org",
        "shop-two",
        "--role",
        "moderator",
        "--password-stdin",
        *data,
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    assert "shop-two:moderator" in run("users", "list", *data).stdout
    nowhere = run(
        "users",
        "create",
        "--email",
        "n@example.com",
        "--org",
        "nope",
        "--password-stdin",
        *data,
        stdin=PASSWORD + "\n",
    )
    assert nowhere.returncode == 2 and "orgs create" in nowhere.stderr
    reset = run(
        "users",
        "set-password",
        "--email",
        "mod@example.com",
        "--password-stdin",
        *data,
        stdin="another long password\n",
    )
    assert reset.returncode == 0, reset.stderr
    unknown = run(
        "users",
        "set-password",
        "--email",
        "who@example.com",
        "--password-stdin",
        *data,
        stdin="another long password\n",
    )
    assert unknown.returncode == 2
