"""Alembic migrations: they build the schema the models describe, on SQLite and PostgreSQL, once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlmodel import Session, SQLModel

from server.storage.db import MIGRATIONS, Database, driver_urls, migrate
from server.storage.models import Room  # also registers every table on SQLModel.metadata
from tests.helpers import REPO

# Statements that change a database; a migration run with nothing to do sends none of them.
WRITES = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a new SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A synchronous engine on the same database, for inspecting it."""
    sync = create_engine(driver_urls(database_url)[1])
    yield sync
    sync.dispose()


def _head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _version(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


def test_migrations_build_every_table_on_a_fresh_database(database_url: str, engine: Engine) -> None:
    """On an empty database, migrate() creates every model's table and records the head revision."""
    assert inspect(engine).get_table_names() == []
    migrate(database_url)
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert tables - set(SQLModel.metadata.tables) == {"alembic_version"}
    assert _version(engine) == [_head()]


def test_schema_matches_the_models(database_url: str, engine: Engine) -> None:
    """Alembic's autogenerate comparison finds no difference between the migrated schema and the models."""
    migrate(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations disagree; add a migration: {diff}"


def test_second_migration_run_changes_nothing(database_url: str, engine: Engine) -> None:
    """Migrating an up-to-date database sends no writing statement and keeps the data and version."""
    migrate(database_url)
    with Session(engine) as session:
        session.add(Room(id="r1", title="T", created_ms=1, host_key_hash="h"))
        session.commit()
    before = inspect(engine).get_table_names()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        migrate(database_url)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert statements, "the second run did not reach the database at all"
    writes = [s for s in statements if s.lstrip().upper().startswith(WRITES)]
    assert writes == []
    assert inspect(engine).get_table_names() == before
    assert _version(engine) == [_head()]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT title FROM room WHERE id = 'r1'")).scalar_one() == "T"


def test_processes_migrating_at_once_take_turns(database_url: str, engine: Engine, tmp_path: Path) -> None:
    """Two `livewall migrate` processes started together on a fresh database both succeed, once."""
    cmd = [sys.executable, "-m", "server", "migrate", "--database-url", database_url, "--secret-key", "k"]
    procs = [
        subprocess.Popen(
            [*cmd, "--data-dir", str(tmp_path / f"p{i}")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "newest schema" in out
    assert _version(engine) == [_head()]
    assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())


def test_database_rejects_unknown_schemes() -> None:
    """Only SQLite and PostgreSQL URLs are accepted; postgres:// is an alias of postgresql://."""
    assert driver_urls("sqlite:///x.db") == ("sqlite+aiosqlite:///x.db", "sqlite:///x.db")
    assert driver_urls("postgres://u:p%40ss@h:5/db")[0] == "postgresql+psycopg://u:p%40ss@h:5/db"
    with pytest.raises(ValueError, match="unsupported database URL"):
        Database("mysql://u@h/db")


def _upgrade_to(database_url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.set_main_option("sqlalchemy.url", driver_urls(database_url)[1].replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, revision)


def test_rooms_made_before_accounts_join_the_default_organisation(database_url: str, engine: Engine) -> None:
    """A database at 0010 with two rooms, a product and a revoked host token, upgraded to the head:
    organisation "default" exists and owns both rooms, their host keys stay on, the rest is intact."""
    _upgrade_to(database_url, "0010")
    room_sql = (
        "INSERT INTO room (id, title, status, created_ms, host_key_hash, host_key_gen, screen_key_gen, "
        "peak_viewers) VALUES (:id, :title, :status, :created, :hash, :gen, 1, 7)"
    )
    with engine.begin() as conn:
        conn.execute(
            text(room_sql),
            {"id": "r1", "title": "Spring tea", "status": "live", "created": 10, "hash": "h1", "gen": 3},
        )
        conn.execute(
            text(room_sql),
            {"id": "r2", "title": "Old show", "status": "ended", "created": 5, "hash": "h2", "gen": 1},
        )
        conn.execute(
            text(
                "INSERT INTO product (id, room_id, name, price_minor, currency, stock, created_ms, archived) "
                "VALUES (4, 'r1', 'Longjing 50 g', 8800, 'CNY', 12, 11, :archived)"
            ),
            {"archived": False},
        )
        conn.execute(text("INSERT INTO revokedtoken (id, room_id, expires_ms) VALUES ('t0k', 'r1', 99)"))
    migrate(database_url)
    assert _version(engine) == [_head()]
    with engine.connect() as conn:
        orgs = conn.execute(text("SELECT id FROM organisation")).scalars().all()
        rooms = conn.execute(
            text(
                "SELECT id, org_id, host_key_enabled, title, status, host_key_hash, host_key_gen, "
                "scheduled_ms, cloned_from FROM room ORDER BY id"
            )
        ).all()
        product = conn.execute(
            text("SELECT room_id, name, price_minor, stock FROM product WHERE id = 4")
        ).one()
        token = conn.execute(text("SELECT room_id, expires_ms FROM revokedtoken WHERE id = 't0k'")).one()
    assert orgs == ["default"]
    assert [tuple(r) for r in rooms] == [
        ("r1", "default", True, "Spring tea", "live", "h1", 3, None, None),
        ("r2", "default", True, "Old show", "ended", "h2", 1, None, None),
    ]
    assert tuple(product) == ("r1", "Longjing 50 g", 8800, 12)
    assert tuple(token) == ("r1", 99)
