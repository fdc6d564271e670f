"""Which version ``NAME`` and ``NAME@ALIAS`` mean, read straight from an embedded SQLite registry.

Importing MLflow (and SQLAlchemy) costs seconds; asking which version is the latest costs one
query. For the embedded store ``sqlite:///PATH`` (acezoo's default, :func:`acezoo.hub.store.tracking_uri`)
this module opens the file read-only with the standard library and reads MLflow's registry
tables, so that :func:`acezoo.hub.models.load` can serve a version it has a local copy of without
MLflow. It never writes, and never guesses: for anything else (an HTTP server, a database
server, a URI with options, a missing, locked or damaged file, a schema it does not know,
MLflow workspaces switched on, the reserved aliases ``latest`` and ``vN``, any error) it returns
None and the caller asks MLflow as before.

The tables it reads, as MLflow 3.x (``mlflow/store/model_registry/dbmodels/models.py``) defines them:

- ``model_versions(workspace, name, version INTEGER, current_stage, run_id, ...)``, primary key
  ``(workspace, name, version)``. A deleted version keeps its row with ``current_stage =
  'Deleted_Internal'`` (and its run id redacted); MLflow skips those rows, and so does this module.
- ``registered_model_aliases(workspace, name, alias, version INTEGER)``, primary key
  ``(workspace, name, alias)``. Deleting a version deletes its aliases.
- ``model_version_tags(workspace, name, version INTEGER, key, value)``.

Without workspaces (MLflow's default, ``MLFLOW_ENABLE_WORKSPACES`` unset) every query MLflow
makes is limited to ``workspace = 'default'``; so are these. The latest version is the highest
version number that is not deleted (what :func:`acezoo.hub.models.load` asks MLflow for); an
alias names one version. All is read in one read transaction, so the version, its tags and
its aliases agree with each other.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, TypeVar
from urllib.parse import quote

if TYPE_CHECKING:  # imported when a store is read (loading a shipped model needs no sqlite3)
    import sqlite3

__all__ = ["Resolved", "resolve", "run_id", "sqlite_path"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

TIMEOUT_S = 0.5  # wait this long for a writer's lock, then let MLflow answer
DELETED = "Deleted_Internal"  # mlflow.entities.model_registry.model_version_stages.STAGE_DELETED_INTERNAL
WORKSPACE = "default"  # mlflow.utils.workspace_utils.DEFAULT_WORKSPACE_NAME
COLUMNS = {
    "model_versions": {"workspace", "name", "version", "current_stage", "run_id"},
    "registered_model_aliases": {"workspace", "name", "alias", "version"},
    "model_version_tags": {"workspace", "name", "version", "key", "value"},
}
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)  # MLflow resolves these itself


@dataclass(frozen=True)
class Resolved:
    """One live registered version, as the registry has it now."""

    version: int
    run_id: str
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///PATH`` URI (SQLAlchemy's form: ``sqlite:////abs`` or ``sqlite:///rel``), else None."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or "?" in uri:
        return None
    path = uri[len(prefix):]
    return path if path and path != ":memory:" else None


def _workspaces_on() -> bool:
    return os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").strip().lower() not in ("", "0", "false")


def _schema_known(con: sqlite3.Connection) -> bool:
    for table, needed in COLUMNS.items():
        have = {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
        if not needed <= have:
            return False
    return True


def _read(con: sqlite3.Connection, name: str, alias: str | None) -> Resolved | None:
    live = "SELECT {} FROM model_versions WHERE workspace = ? AND name = ? AND current_stage != ?"
    if alias is None:
        row = con.execute(live.format("MAX(version)"), (WORKSPACE, name, DELETED)).fetchone()
    else:
        row = con.execute("SELECT version FROM registered_model_aliases WHERE workspace = ? AND name = ? "
                          "AND alias = ?", (WORKSPACE, name, alias)).fetchone()
    if row is None or row[0] is None:
        return None  # no such model or alias: MLflow's path says so in its own words
    version = int(row[0])
    found = con.execute(live.format("run_id") + " AND version = ?", (WORKSPACE, name, DELETED, version)).fetchone()
    if found is None:
        return None
    of_version = "WHERE workspace = ? AND name = ? AND version = ?"
    key = (WORKSPACE, name, version)
    rows = con.execute(f"SELECT alias FROM registered_model_aliases {of_version} ORDER BY alias", key)
    aliases = [a for (a,) in rows]
    tags = dict(con.execute(f"SELECT key, value FROM model_version_tags {of_version}", key).fetchall())
    return Resolved(version=version, run_id=found[0] or "", aliases=aliases, tags=tags)


def _query(uri: str, read: Callable[[sqlite3.Connection], T]) -> T | None:
    """``read(connection)`` in one read transaction on the SQLite store at ``uri``, or None (ask MLflow)."""
    path = sqlite_path(uri)
    if path is None or _workspaces_on():
        return None
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=TIMEOUT_S, isolation_level=None)
    except Exception as exc:  # noqa: BLE001 - missing file, no permission: MLflow decides
        logger.debug("quick resolve of %s skipped: %s", uri, exc)
        return None
    try:
        con.execute("BEGIN")
        return read(con) if _schema_known(con) else None
    except Exception as exc:  # noqa: BLE001 - locked, damaged, not a database: MLflow decides
        logger.debug("quick resolve of %s skipped: %s", uri, exc)
        return None
    finally:
        con.close()


def resolve(uri: str, name: str, alias: str | None = None) -> Resolved | None:
    """The version ``name`` (latest) or ``name@alias`` means in the registry at ``uri``, or None (ask MLflow)."""
    if alias is not None and _RESERVED_ALIAS.match(alias):
        return None
    return _query(uri, lambda con: _read(con, name, alias))


def run_id(uri: str, name: str, version: int) -> str | None:
    """The run behind live version ``name/version`` of the SQLite store at ``uri``; ``""`` if the
    store has no such live version; None if the store cannot say (not SQLite, locked, ...)."""
    def read(con: sqlite3.Connection) -> str:
        row = con.execute("SELECT run_id FROM model_versions WHERE workspace = ? AND name = ? AND version = ? "
                          "AND current_stage != ?", (WORKSPACE, name, version, DELETED)).fetchone()
        return (row[0] or "") if row is not None else ""

    return _query(uri, read)
