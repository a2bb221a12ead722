"""server.config: settings from LIVEWALL_* variables, their coercion, and derived values."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Start each test with no LIVEWALL_* variables from the outer environment."""
    import os

    for name in list(os.environ):
        if name.startswith("LIVEWALL_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_without_env() -> None:
    """With no variables set, from_env gives the dataclass defaults."""
    assert Settings.from_env() == Settings()


def test_int_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Integer settings are parsed as int."""
    monkeypatch.setenv("LIVEWALL_PORT", "9123")
    monkeypatch.setenv("LIVEWALL_HISTORY_EVENTS", "50")
    settings = Settings.from_env()
    assert settings.port == 9123 and settings.history_events == 50


def test_float_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Float settings are parsed as float."""
    monkeypatch.setenv("LIVEWALL_INBOUND_RATE_PER_SEC", "2.5")
    assert Settings.from_env().inbound_rate_per_sec == 2.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("On", True),
        ("0", False),
        ("false", False),
        ("off", False),
    ],
)
def test_bool_from_env(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    """Boolean settings accept 1/0, true/false, yes/no, on/off in any case."""
    monkeypatch.setenv("LIVEWALL_SECURE_COOKIES", raw)
    assert Settings.from_env().secure_cookies is expected


def test_tuple_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list setting is comma-separated; blanks and surrounding spaces are dropped."""
    monkeypatch.setenv("LIVEWALL_ALLOWED_ORIGINS", " https://a.example , ,https://b.example,")
    assert Settings.from_env().allowed_origins == ("https://a.example", "https://b.example")


def test_strings_and_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Optional strings are taken as given; data_dir becomes a Path."""
    monkeypatch.setenv("LIVEWALL_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("LIVEWALL_DATA_DIR", str(tmp_path / "data"))
    settings = Settings.from_env()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.data_dir == tmp_path / "data"


def test_empty_variable_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty variable counts as unset (the default applies)."""
    monkeypatch.setenv("LIVEWALL_PORT", "")
    assert Settings.from_env().port == Settings().port


def test_overrides_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit (flag) values take precedence; None overrides leave the env value."""
    monkeypatch.setenv("LIVEWALL_PORT", "9123")
    monkeypatch.setenv("LIVEWALL_HOST", "0.0.0.0")
    settings = Settings.from_env(port=8080, host=None)
    assert settings.port == 8080 and settings.host == "0.0.0.0"


def test_override_data_dir_becomes_path(tmp_path: Path) -> None:
    """A data_dir override given as a string becomes a Path."""
    assert Settings.from_env(data_dir=str(tmp_path)).data_dir == tmp_path


def test_bad_bool_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad boolean raises ValueError naming the variable and the value."""
    monkeypatch.setenv("LIVEWALL_LOG_JSON", "maybe")
    with pytest.raises(ValueError, match=r"LIVEWALL_LOG_JSON.*maybe"):
        Settings.from_env()


@pytest.mark.parametrize(("name", "raw"), [("PORT", "80a"), ("INBOUND_RATE_PER_SEC", "fast")])
def test_bad_number_raises(monkeypatch: pytest.MonkeyPatch, name: str, raw: str) -> None:
    """A value that is not a number raises ValueError."""
    monkeypatch.setenv(f"LIVEWALL_{name}", raw)
    with pytest.raises(ValueError):
        Settings.from_env()


@pytest.mark.parametrize(
    ("name", "raw"),
    [("PORT", "80a"), ("INBOUND_RATE_PER_SEC", "fast"), ("FANOUT_COALESCE_STARVED_SECS", "0,2")],
)
def test_bad_number_names_variable(monkeypatch: pytest.MonkeyPatch, name: str, raw: str) -> None:
    """The error for a bad number names the variable, like the one for a bad boolean."""
    monkeypatch.setenv(f"LIVEWALL_{name}", raw)
    with pytest.raises(ValueError, match=f"LIVEWALL_{name}"):
        Settings.from_env()


def test_resolved_fills_database_and_secret(tmp_path: Path) -> None:
    """resolved() creates the data dir, a SQLite URL inside it and a private secret key file."""
    settings = Settings(data_dir=tmp_path / "new").resolved()
    assert (tmp_path / "new").is_dir()
    assert settings.database_url is not None and settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("livewall.db")
    key_file = tmp_path / "new" / "secret.key"
    assert settings.secret_key == key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_resolved_keeps_secret_across_restarts(tmp_path: Path) -> None:
    """A second start on the same data dir reuses the stored secret (tokens stay valid)."""
    first = Settings(data_dir=tmp_path).resolved()
    second = Settings(data_dir=tmp_path).resolved()
    assert first.secret_key == second.secret_key


def test_resolved_keeps_explicit_values(tmp_path: Path) -> None:
    """An explicit database URL and secret are not replaced."""
    settings = Settings(data_dir=tmp_path, database_url="sqlite:///x.db", secret_key="s").resolved()
    assert (settings.database_url, settings.secret_key) == ("sqlite:///x.db", "s")
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize(
    ("host", "public_url", "expected"),
    [
        ("0.0.0.0", None, "http://127.0.0.1:8000"),
        ("192.0.2.7", None, "http://192.0.2.7:8000"),
        ("0.0.0.0", "https://live.example/", "https://live.example"),
    ],
)
def test_base_url(host: str, public_url: str | None, expected: str) -> None:
    """base_url prefers the public URL (without trailing slash), else a reachable host and port."""
    assert Settings(host=host, public_url=public_url).base_url == expected


def test_processes_starting_together_share_one_secret_key(tmp_path: Path) -> None:
    """Of several starts racing to create secret.key, one key wins and every one of them uses it."""
    import threading

    from server.config import _load_or_create_secret

    for round_ in range(20):
        path = tmp_path / f"r{round_}" / "secret.key"
        path.parent.mkdir()
        start = threading.Barrier(8)
        keys: list[str] = []

        def one(path: Path = path, start: threading.Barrier = start, keys: list[str] = keys) -> None:
            start.wait()
            keys.append(_load_or_create_secret(path))

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(keys) == 8 and len(set(keys)) == 1, keys
        assert path.read_text() == keys[0]
        assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # nothing left aside


def test_an_empty_secret_key_file_is_named(tmp_path: Path) -> None:
    from server.config import _load_or_create_secret

    (tmp_path / "secret.key").write_text("")
    with pytest.raises(ValueError, match=r"secret\.key is empty"):
        _load_or_create_secret(tmp_path / "secret.key")
