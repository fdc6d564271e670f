"""The model registry: register checkpoints as MLflow model versions, load them by name.

Names: ``NAME`` (latest version), ``NAME@ALIAS`` (e.g. ``@champion``) or ``NAME/VERSION``.
A registered version stores the checkpoint directory (config, safetensors weights, metrics,
model card) as the artifacts of an MLflow run; loading downloads it once into
``<data home>/models/NAME/VERSION/``, validates the config against the current schema,
rebuilds the model through the compiler and loads the weights (never unpickling anything).
A version loaded before loads from that copy without MLflow: ``NAME/VERSION`` always (a version
never changes), ``NAME`` and ``NAME@ALIAS`` when the registry is the embedded SQLite store, whose
file says which version they mean now (:mod:`acezoo.hub.quick_resolve`); otherwise MLflow is asked.

The pretrained models shipped with acezoo (``acezoo/pretrained/``) load by their bare name
straight from the package (:mod:`acezoo.hub.pretrained`: no registry, no MLflow), so
``acezoo.load("egnn-nbody-ace")`` works offline on a fresh install and answers at once;
``NAME@pretrained`` registers the shipped version into the registry (idempotently: a version
whose weights have the same SHA-256 is reused) and loads it from there. A bare name that is
shipped always means the shipped model: reach your own versions of it as ``NAME/VERSION`` or
``NAME@ALIAS``.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acezoo.errors import AcezooError, CheckpointError
from acezoo.hub import offline, quick_resolve, store
from acezoo.hub.info import ModelInfo, info_from_tags
from acezoo.hub.pretrained import PRETRAINED_ALIAS, bundled, pretrained_card, pretrained_dir, pretrained_info
from acezoo.hub.pretrained import list_pretrained
from acezoo.paths import data_home
from acezoo.run_layout import CARD_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE, PLOT_FILE, WEIGHTS_FILE

if TYPE_CHECKING:  # torch and the trainer are imported when a model is loaded or registered
    import torch
    from torch import nn

__all__ = ["ModelInfo", "register", "load", "list_models", "model_card", "pretrained_dir", "UnknownModel"]

REGISTRY_EXPERIMENT = "acezoo-registry"
_KEEP = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, HISTORY_FILE, PLOT_FILE, CARD_FILE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class UnknownModel(AcezooError):
    """No registered or pretrained model has that name (or version, or alias)."""

    exit_code = 2


def _load_run(path: Path) -> tuple[Any, Any]:
    """Validate a checkpoint directory and rebuild its model (imports torch and the trainer)."""
    from acezoo.training.checkpoint import load_run

    return load_run(path)


def _pruned_in_place(model: Any) -> nn.Module:
    """``model.prune()`` without the copy: the network of a model just loaded, which nobody else holds."""
    from acezoo.compiler import strip_relaxed

    return strip_relaxed(model.net)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _info(mv: Any) -> ModelInfo:
    return info_from_tags(mv.name, int(mv.version), getattr(mv, "aliases", []) or [], mv.tags or {}, mv.run_id or "")


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(exc).lower() or "does not exist" in str(exc).lower()


def _versions(client: Any, name: str) -> list[Any]:
    return list(client.search_model_versions(f"name = '{name}'"))


def _registered_names(client: Any) -> list[str]:
    return sorted(m.name for m in client.search_registered_models())


# -- register ---------------------------------------------------------------------------------
@offline.reports_outages
def register(checkpoint: str | Path, name: str, alias: str | None = None, tracking_uri: str | None = None) -> ModelInfo:
    """Register a checkpoint directory (or the ``checkpoint/`` artifacts of an MLflow run id) as ``name``.

    Registering weights that are already a version of ``name`` returns that version (and
    moves ``alias`` to it) instead of adding a duplicate. Safe to run from several processes
    at once.
    """
    if not _NAME.match(name):
        raise AcezooError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'")
    uri = store.tracking_uri(tracking_uri)
    client = store.client(uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(checkpoint)
        if not path.is_dir():
            path = _download_run_checkpoint(client, str(checkpoint), Path(tmp))
        config, _ = _load_run(path)  # validates config and weights before anything is written
        metrics = json.loads((path / METRICS_FILE).read_text()) if (path / METRICS_FILE).is_file() else {}
        checksum = _sha256(path / WEIGHTS_FILE)
        with store.store_lock(uri):
            try:
                client.create_registered_model(name, tags={"acezoo": "true"})
            except Exception as exc:  # already registered (possibly by a concurrent process)
                if "RESOURCE_ALREADY_EXISTS" not in str(getattr(exc, "error_code", "")) + str(exc):
                    raise
            same = [mv for mv in _versions(client, name) if (mv.tags or {}).get("acezoo.sha256") == checksum]
            if same:
                mv = min(same, key=lambda v: int(v.version))
            else:
                mv = _create_version(client, name, path, config, metrics, checksum)
            if alias:
                client.set_registered_model_alias(name, alias, mv.version)
            mv = client.get_model_version(name, mv.version)
    return _info(mv)


def _create_version(client: Any, name: str, path: Path, config: Any, metrics: dict, checksum: str) -> Any:
    exp = store.experiment_id(client, REGISTRY_EXPERIMENT)
    run = client.create_run(exp, run_name=f"register-{name}", tags={"acezoo.registered_as": name})
    with tempfile.TemporaryDirectory() as staging:
        for fname in _KEEP:
            if (path / fname).is_file():
                shutil.copyfile(path / fname, Path(staging) / fname)
        client.log_artifacts(run.info.run_id, staging, artifact_path="checkpoint")
    client.set_terminated(run.info.run_id)
    test = metrics.get("test", {})
    metric = next(iter(test.get("pruned", {})), "")
    tags = {
        "acezoo.arch": config.model.arch,
        "acezoo.dataset": config.data.dataset,
        "acezoo.mode": config.constraints.mode,
        "acezoo.metric": metric,
        "acezoo.sha256": checksum,
    }
    if metric:
        tags["acezoo.test_pruned"] = repr(float(test["pruned"][metric]))
        tags["acezoo.test_full"] = repr(float(test["full"][metric]))
    if "params" in metrics:
        tags["acezoo.params"] = str(metrics["params"]["pruned"])
    card = path / "README.md"
    description = card.read_text()[:4000] if card.is_file() else ""
    source = f"{run.info.artifact_uri}/checkpoint"
    return client.create_model_version(name, source, run_id=run.info.run_id, tags=tags, description=description)


def _download_run_checkpoint(client: Any, run_ref: str, dest: Path) -> Path:
    run_id = run_ref.removeprefix("runs:/").split("/")[0]
    try:
        client.get_run(run_id)
    except Exception:
        raise CheckpointError(f"{run_ref}: neither a checkpoint directory nor an MLflow run id") from None
    try:
        return Path(client.download_artifacts(run_id, "checkpoint", str(dest)))
    except Exception as exc:
        raise CheckpointError(f"{run_ref}: the run has no checkpoint/ artifacts ({exc})") from None


# -- resolve and load -------------------------------------------------------------------------
def _parse(spec: str) -> tuple[str, str | None, int | None]:
    if "@" in spec:
        name, alias = spec.split("@", 1)
        return name, alias, None
    if "/" in spec:
        name, version = spec.rsplit("/", 1)
        if not version.isdigit():
            raise UnknownModel(f"{spec!r}: a version must be a number (NAME/3)")
        return name, None, int(version)
    return spec, None, None


def _ensure_pretrained(client: Any, uri: str, name: str) -> None:
    shipped = bundled()
    if name in shipped:
        register(shipped[name], name, alias=PRETRAINED_ALIAS, tracking_uri=uri)


def _resolve(client: Any, uri: str, spec: str) -> Any:
    name, alias, version = _parse(spec)
    if not _versions(client, name):
        _ensure_pretrained(client, uri, name)
    versions = _versions(client, name)
    if not versions:
        known = sorted(set(_registered_names(client)) | set(bundled()))
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise UnknownModel(f"no model named {name!r}.{hint} Known: {', '.join(known) or 'none'}.")
    if alias is not None:
        try:
            return client.get_model_version_by_alias(name, alias)
        except Exception as exc:
            if not _is_missing(exc):
                raise
            aliases = sorted({a for mv in versions for a in (getattr(mv, "aliases", None) or [])})
            raise UnknownModel(f"{name!r} has no alias {alias!r}; aliases: {', '.join(aliases) or 'none'}") from None
    if version is not None:
        match = [mv for mv in versions if int(mv.version) == version]
        if not match:
            nums = sorted(int(mv.version) for mv in versions)
            raise UnknownModel(f"{name!r} has no version {version}; versions: {', '.join(map(str, nums))}")
        return client.get_model_version(name, str(version))
    return client.get_model_version(name, str(max(int(mv.version) for mv in versions)))


def _local_copy(client: Any, mv: Any) -> Path:
    """``<data home>/models/NAME/VERSION/``, downloaded unless a copy with the registered weights
    (the version's SHA-256 tag) is there already. A copy whose weights differ (another registry's
    version of the same number, e.g. after the store was recreated) is replaced."""
    target = data_home() / "models" / mv.name / str(mv.version)
    expected = (mv.tags or {}).get("acezoo.sha256")
    if (target / WEIGHTS_FILE).is_file() and (not expected or _sha256(target / WEIGHTS_FILE) == expected):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{mv.version}-"))
    try:
        got = Path(client.download_artifacts(mv.run_id, "checkpoint", str(tmp)))
        if expected and _sha256(got / WEIGHTS_FILE) != expected:
            raise CheckpointError(f"{mv.name}/{mv.version}: downloaded weights do not match the registered SHA-256")
        if target.exists():  # a stale copy: move it aside, then put the new one in its place
            os.replace(target, tmp / "stale")
        try:
            os.replace(got, target)
        except OSError:  # another process put it there first
            if not (target / WEIGHTS_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _quick_local_copy(uri: str, parsed: tuple[str, str | None, int | None]) -> tuple[Path, ModelInfo] | None:
    """``NAME`` or ``NAME@ALIAS`` without MLflow: the version the SQLite store names now, if loaded before.

    The version, its aliases and its tags come from the store (:mod:`acezoo.hub.quick_resolve`),
    the files from the local copy of that version; the copy must come from the same registered
    run. Anything else (another kind of store, a version never loaded) is None: ask MLflow.
    """
    name, alias, version = parsed
    if version is not None:
        return None
    found = quick_resolve.resolve(uri, name, alias)
    cached = offline.cached_version(uri, name, found.version) if found is not None else None
    if found is None or cached is None or cached[1].get("run_id") != found.run_id:
        return None
    return cached[0], info_from_tags(name, found.version, found.aliases, found.tags, found.run_id)


@offline.reports_outages
def load(
    spec: str,
    *,
    device: str | torch.device = "cpu",
    full: bool = False,
    tracking_uri: str | None = None,
) -> nn.Module:
    """A ready model from the registry: ``load("NAME")``, ``load("NAME@alias")``, ``load("NAME/3")``.

    Returns the pruned, exactly equivariant network (a plain ``nn.Module``) in eval mode on
    ``device``; ``full=True`` returns the relaxed model with its gammas instead. The model's
    ``acezoo_info`` attribute holds its :class:`ModelInfo`, ``acezoo_config`` its config and
    ``acezoo_inputs`` what it reads and returns (:class:`acezoo.inputs.describe.ModelInputs`);
    each call's input is checked against the latter before any layer runs.
    """
    if not isinstance(spec, str):  # e.g. a run directory as a Path
        raise UnknownModel(f"{spec!r}: acezoo.load takes a model name (NAME, NAME@alias or NAME/version); for a "
                           "run directory use acezoo.training.checkpoint.load_run(RUN_DIR)")
    parsed = _parse(spec)
    uri = store.tracking_uri(tracking_uri)
    cached = offline.cached_version(uri, parsed[0], parsed[2]) if parsed[2] is not None else None
    if cached is not None and quick_resolve.run_id(uri, parsed[0], parsed[2]) not in (None, cached[1].get("run_id")):
        cached = None  # the SQLite store now has another run under that number (it was recreated): ask it
    shipped = bundled()
    if spec in shipped:  # a shipped model by its bare name: read from the package, no registry
        folder, info = shipped[spec], pretrained_info(spec, shipped[spec])
    elif cached is not None:  # NAME/VERSION loaded before from this registry: versions never change
        folder, info = cached[0], ModelInfo(**cached[1])
    elif (quick := _quick_local_copy(uri, parsed)) is not None:  # NAME, NAME@ALIAS: read from the SQLite store
        folder, info = quick
        offline.remember(uri, spec, dataclasses.asdict(info), latest=parsed[1] is None)
    else:
        try:
            client = store.client(uri)
            mv = _resolve(client, uri, spec)
            folder, info = _local_copy(client, mv), _info(mv)
        except Exception as exc:
            if not offline.is_outage(exc):
                raise
            folder, fields = offline.stand_in(spec, parsed, uri, exc)  # the local copy, with a warning
            info = ModelInfo(**fields)
        else:
            offline.remember(uri, spec, dataclasses.asdict(info), latest=parsed[1:] == (None, None))
    config, model = _load_run(folder)
    net: nn.Module = model if full else _pruned_in_place(model)
    net = net.to(device).eval()
    net.acezoo_info = info  # type: ignore[assignment]
    net.acezoo_config = config  # type: ignore[assignment]
    return _with_inputs(net, config, folder)


def _with_inputs(net: nn.Module, config: Any, folder: Path) -> nn.Module:
    """``net.acezoo_inputs`` (what it reads and returns) and the check of every input against it."""
    from acezoo.inputs.check import attach
    from acezoo.inputs.describe import describe

    metrics = json.loads((folder / METRICS_FILE).read_text()) if (folder / METRICS_FILE).is_file() else {}
    return attach(net, describe(config.model, config.data, metrics))


@offline.reports_outages
def list_models(pattern: str = "*", pretrained: bool = False, tracking_uri: str | None = None) -> list[ModelInfo]:
    """Registered models (latest version of each) whose name matches ``pattern``.

    ``pretrained=True`` lists the pretrained models shipped with acezoo (read from the package).
    """
    if pretrained:  # read from the package: no registry, no MLflow
        return list_pretrained(pattern)
    uri = store.tracking_uri(tracking_uri)
    client = store.client(uri)
    names = [n for n in _registered_names(client) if fnmatch.fnmatchcase(n, pattern)]
    return [_info(_resolve(client, uri, n)) for n in names]


@offline.reports_outages
def model_card(spec: str, tracking_uri: str | None = None) -> str:
    """The model card (README.md) of a registered model version (a shipped model's, by its bare name)."""
    if spec in bundled():
        return pretrained_card(spec)
    uri = store.tracking_uri(tracking_uri)
    client = store.client(uri)
    mv = _resolve(client, uri, spec)
    from acezoo.hub.card_inputs import with_inputs_section

    folder = _local_copy(client, mv)
    card = folder / CARD_FILE
    header = f"<!-- {mv.name} version {mv.version}; aliases: {', '.join(getattr(mv, 'aliases', []) or []) or 'none'} -->\n"
    return header + with_inputs_section(card.read_text() if card.is_file() else (mv.description or "(no model card)"),
                                        folder)
