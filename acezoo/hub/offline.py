"""Registry outages: local copies stand in for a registry that does not answer.

Every model loaded from a registry is kept in ``<data home>/models/NAME/VERSION/``. This module
also records, per name, which registry it came from, what its versions are and where its
aliases pointed (``models/NAME/index.json``), so that ``acezoo.load("NAME")``, ``NAME@ALIAS``
and ``NAME/VERSION`` still work, with a warning, while that registry is down. A name never
loaded from it gets :class:`~acezoo.errors.RegistryUnavailable` naming the registry, and so do
registering, listing and model cards (:func:`reports_outages`).
"""
from __future__ import annotations

import datetime as _dt
import functools
import inspect
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from acezoo.errors import AcezooError, RegistryUnavailable
from acezoo.hub import store
from acezoo.io.atomic import atomic_write_text
from acezoo.paths import data_home

__all__ = ["is_outage", "remember", "stand_in", "cached_version", "reports_outages", "INDEX_FILE"]

logger = logging.getLogger(__name__)

INDEX_FILE = "index.json"
_WEIGHTS = "model.safetensors"
_NOT_OUTAGES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"}
F = TypeVar("F", bound=Callable[..., Any])


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the registry could not be used (down, slow, refusing), not that a model is missing."""
    if isinstance(exc, AcezooError):
        return False
    MlflowException = store.import_mlflow().exceptions.MlflowException  # noqa: N806

    try:
        from requests import RequestException
    except ImportError:  # pragma: no cover - requests comes with MLflow
        RequestException = OSError  # noqa: N806
    if isinstance(exc, MlflowException):
        return getattr(exc, "error_code", "") not in _NOT_OUTAGES
    return isinstance(exc, (OSError, RequestException))


def _unavailable(uri: str, exc: BaseException, what: str = "") -> RegistryUnavailable:
    return RegistryUnavailable(
        f"cannot reach the model registry {uri} ({store.describe_failure(exc)}){what}. Start it, or point "
        "--tracking-uri / $MLFLOW_TRACKING_URI at a registry that answers"
    )


def _index_path(name: str) -> Path:
    return data_home() / "models" / name / INDEX_FILE


def _read(name: str) -> dict[str, Any]:
    try:
        index = json.loads(_index_path(name).read_text())
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def remember(uri: str, spec: str, info: dict[str, Any], latest: bool) -> None:
    """Record a version just loaded from ``uri`` (``latest``: ``spec`` asked for the latest version)."""
    name, version = info["name"], int(info["version"])
    index = _read(name)
    if index.get("registry") != uri:
        index = {"registry": uri, "versions": {}, "aliases": {}}
    index["versions"][str(version)] = info
    aliases = index.setdefault("aliases", {})
    for alias in [a for a, v in aliases.items() if v == version and a not in info.get("aliases", [])]:
        del aliases[alias]  # moved to another version since
    aliases.update({alias: version for alias in info.get("aliases", [])})
    if latest:
        index["latest"] = version
    index["checked"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    try:
        atomic_write_text(_index_path(name), json.dumps(index, indent=1) + "\n")
    except OSError:  # a read-only cache still loads; it just cannot stand in later
        logger.debug("could not write %s", _index_path(name))


def stand_in(spec: str, parsed: tuple[str, str | None, int | None], uri: str,
             exc: BaseException) -> tuple[Path, dict[str, Any]]:
    """The local copy of ``spec`` from ``uri`` and its info, with a warning; else :class:`RegistryUnavailable`."""
    name, alias, version = parsed
    index = _read(name)
    if index.get("registry") != uri or not index.get("versions"):
        raise _unavailable(uri, exc, f", and {name!r} was never loaded from it, so there is no local copy")
    versions = index["versions"]
    if alias is not None:
        version = index.get("aliases", {}).get(alias)
        if version is None:
            raise _unavailable(uri, exc, f", and the local copies of {name!r} do not know the alias {alias!r}")
    elif version is None:
        version = index.get("latest") or max(int(v) for v in versions)
    folder = data_home() / "models" / name / str(version)
    if str(version) not in versions or not (folder / _WEIGHTS).is_file():
        have = ", ".join(sorted(versions, key=int))
        raise _unavailable(uri, exc, f", and there is no local copy of {name}/{version} (local versions: {have})")
    logger.warning("model registry %s is not answering (%s); loading %s/%s from the local copy (registry last "
                   "reached %s; a newer version may exist)", uri, store.describe_failure(exc), name, version,
                   index.get("checked", "?"))
    return folder, versions[str(version)]


def cached_version(uri: str, name: str, version: int) -> tuple[Path, dict[str, Any]] | None:
    """The local copy of ``name/version`` loaded before from ``uri``, and its info, or None.

    A registered version never changes (its artifacts are fixed when it is created), so this
    copy is as good as the registry's: ``load("NAME/VERSION")`` uses it without asking the
    registry (the info, aliases included, is as recorded when it was last loaded from there).
    ``NAME`` and ``NAME@ALIAS`` can move, so they always ask which version they mean (the SQLite
    store's file directly, :mod:`acezoo.hub.quick_resolve`, else MLflow) before using a copy."""
    index = _read(name)
    info = index.get("versions", {}).get(str(version)) if index.get("registry") == uri else None
    folder = data_home() / "models" / name / str(version)
    if info is None or not (folder / _WEIGHTS).is_file():
        return None
    return folder, info


def reports_outages(fn: F) -> F:
    """Turn a registry outage inside ``fn`` (which takes ``tracking_uri``) into :class:`RegistryUnavailable`."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_outage(exc):
                raise
            bound = signature.bind_partial(*args, **kwargs)
            raise _unavailable(store.tracking_uri(bound.arguments.get("tracking_uri")), exc) from None

    return wrapper  # type: ignore[return-value]
