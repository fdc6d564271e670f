"""Reading NAME and NAME@ALIAS from the SQLite store: MLflow's answer, or None (and MLflow answers)."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from acezoo.hub import quick_resolve
from acezoo.hub.quick_resolve import Resolved, resolve

# MLflow 3.x's registry tables, reduced to the columns the resolver reads (see its docstring)
SCHEMA = """
CREATE TABLE model_versions (workspace VARCHAR(63) NOT NULL DEFAULT 'default', name VARCHAR(256) NOT NULL,
    version INTEGER NOT NULL, current_stage VARCHAR(20), run_id VARCHAR(32), PRIMARY KEY (workspace, name, version));
CREATE TABLE registered_model_aliases (workspace VARCHAR(63) NOT NULL DEFAULT 'default', name VARCHAR(256) NOT NULL,
    alias VARCHAR(256) NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (workspace, name, alias));
CREATE TABLE model_version_tags (workspace VARCHAR(63) NOT NULL DEFAULT 'default', name VARCHAR(256) NOT NULL,
    version INTEGER NOT NULL, key VARCHAR(250) NOT NULL, value TEXT, PRIMARY KEY (workspace, key, name, version));
INSERT INTO model_versions VALUES ('default', 'm', 1, 'None', 'run1'), ('default', 'm', 2, 'Production', 'run2'),
    ('default', 'm', 3, 'Deleted_Internal', 'REDACTED-RUN-ID'), ('other', 'm', 7, 'None', 'run7');
INSERT INTO registered_model_aliases VALUES ('default', 'm', 'champion', 1), ('default', 'm', 'best', 1),
    ('other', 'm', 'champion', 7);
INSERT INTO model_version_tags VALUES ('default', 'm', 1, 'acezoo.arch', 'egnn'), ('default', 'm', 2, 'k', 'v');
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as con:
        con.executescript(SCHEMA)
    con.close()
    return path


def _uri(path: Path) -> str:
    return f"sqlite:///{path}"


def test_latest_and_aliases_skip_deleted_versions_and_other_workspaces(db: Path) -> None:
    assert resolve(_uri(db), "m") == Resolved(version=2, run_id="run2", aliases=[], tags={"k": "v"})
    assert resolve(_uri(db), "m", "champion") == Resolved(1, "run1", ["best", "champion"], {"acezoo.arch": "egnn"})
    assert resolve(_uri(db), "m", "nope") is None and resolve(_uri(db), "unknown") is None
    with sqlite3.connect(db) as con:  # an alias left on a deleted version is not followed
        con.execute("UPDATE registered_model_aliases SET version = 3 WHERE alias = 'best'")
    con.close()
    assert resolve(_uri(db), "m", "best") is None


def test_what_only_mlflow_knows_is_left_to_it(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for alias in ("latest", "LATEST", "v1"):  # aliases MLflow reserves and resolves itself
        assert resolve(_uri(db), "m", alias) is None
    for uri in ("http://127.0.0.1:5000", "postgresql://u@h/db", f"file://{db.parent}", f"{_uri(db)}?mode=ro",
                "sqlite://", "sqlite:///:memory:"):
        assert resolve(uri, "m") is None, uri
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")
    assert resolve(_uri(db), "m") is None
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "false")
    assert resolve(_uri(db), "m") is not None


def _bad_stores(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    stores = {"missing": folder / "missing.db", "garbage": folder / "garbage.db", "other tables": folder / "other.db",
              "old schema": folder / "old.db", "empty": folder / "empty.db"}
    stores["garbage"].write_bytes(b"not a database, " * 256)
    stores["empty"].touch()
    with sqlite3.connect(stores["other tables"]) as con:
        con.execute("CREATE TABLE notes (text)")
    con.close()
    with sqlite3.connect(stores["old schema"]) as con:  # no workspace column: not a schema this resolver knows
        con.execute("CREATE TABLE model_versions (name, version, current_stage, run_id)")
        con.execute("INSERT INTO model_versions VALUES ('m', 1, 'None', 'r')")
    con.close()
    return stores


def test_unknown_or_damaged_stores_are_left_alone(tmp_path: Path) -> None:
    stores = _bad_stores(tmp_path / "bad")
    before = {kind: path.read_bytes() for kind, path in stores.items() if path.exists()}
    for kind, path in stores.items():
        assert resolve(_uri(path), "m") is None and resolve(_uri(path), "m", "champion") is None, kind
    assert not stores["missing"].exists()  # read-only: nothing created
    assert {kind: path.read_bytes() for kind, path in stores.items() if path.exists()} == before


def test_a_locked_store_is_left_to_mlflow_at_once(db: Path) -> None:
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        t0 = time.perf_counter()
        assert resolve(_uri(db), "m") is None
        assert time.perf_counter() - t0 < quick_resolve.TIMEOUT_S + 2
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert resolve(_uri(db), "m") is not None


@pytest.mark.parametrize("kind", ["garbage", "other tables"])
def test_a_bad_store_gives_the_same_answer_as_mlflow_alone(kind: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``acezoo.load`` over a store the resolver does not read: MLflow's outcome, unchanged."""
    import acezoo

    outcomes = []
    for run in ("quick", "mlflow-only"):
        path = _bad_stores(tmp_path / run)[kind]  # a fresh copy: MLflow may create its tables in it
        if run == "mlflow-only":
            monkeypatch.setattr(quick_resolve, "resolve", lambda *_: None)
        with pytest.raises(Exception) as err:
            acezoo.load("m", tracking_uri=_uri(path))
        outcomes.append((type(err.value), str(err.value).replace(str(tmp_path / run), "<dir>")))
    assert outcomes[0] == outcomes[1]
