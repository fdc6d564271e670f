"""The run directory: resolved config, weights, training state, history and metrics.

Layout of ``<output_dir>/<run>/``::

    config.yaml              the resolved config (what `acezoo eval` and `--resume` read)
    model.safetensors        weights of the selected (best) relaxed model
    train_state.safetensors  everything needed to resume exactly (see :mod:`acezoo.io.tree`)
    history.json             one record per epoch
    metrics.json             final test metrics of the pruned and the full model
    gamma_lambda.png         gammas, multipliers and slacks over training

Every file is written atomically; nothing here is ever unpickled.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from acezoo import registry
from acezoo.compiler import RelaxedModel, compile_model
from acezoo.config.loader import config_from_dict, dump_config, load_config
from acezoo._version import __version__
from acezoo.config.schema import SCHEMA_VERSION, ZooConfig
from acezoo.errors import CheckpointError, ConfigError
from acezoo.io.atomic import atomic_write, atomic_write_text
from acezoo.plugins import HOW_TO_REGISTER_SENTENCE, PluginImportError, import_modules
from acezoo.run_layout import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, PLOT_FILE, STATE_FILE, WEIGHTS_FILE

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "STATE_FILE",
    "HISTORY_FILE",
    "METRICS_FILE",
    "PLOT_FILE",
    "save_weights",
    "load_weights",
    "write_json",
    "write_config",
    "stored_config",
    "load_run",
]



def save_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Write a state dict as safetensors, atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights into ``model``; any missing, extra or mis-shaped tensor is an error."""
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: weights file is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors file ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected tensors (e.g. {extra[0]})")
        if shapes:
            parts.append(f"shape mismatch: {shapes[0]}")
        raise CheckpointError(f"{path}: weights do not fit the model built from the config: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_config(run_dir: Path, config: ZooConfig) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, dump_config(config))


def stored_config(run_dir: str | Path, overrides: tuple[str, ...] = ()) -> ZooConfig:
    """The validated config of a run directory (with ``overrides``), after importing the modules
    its ``imports`` lists; a run whose architecture or data set is not registered here is a
    :class:`CheckpointError` that names it and says how to register it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such checkpoint directory")
    if not (run_dir / CONFIG_FILE).is_file():
        raise CheckpointError(f"{run_dir}: not a checkpoint directory (no {CONFIG_FILE})")
    try:
        raw = yaml.safe_load((run_dir / CONFIG_FILE).read_text())
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{run_dir / CONFIG_FILE}: not valid YAML ({exc})") from None
    version = raw.get("schema_version", SCHEMA_VERSION) if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        raise CheckpointError(
            f"{run_dir / CONFIG_FILE}: written with config schema version {version!r}; this acezoo "
            f"({__version__}) reads version {SCHEMA_VERSION}"
        )
    _check_registered(run_dir, raw)
    try:
        # the stored config is resolved YAML: validate it directly (no omegaconf) unless overridden
        return load_config(run_dir / CONFIG_FILE, overrides) if overrides else \
            config_from_dict(raw, str(run_dir / CONFIG_FILE))
    except ConfigError as exc:
        if overrides:  # the overrides are at fault (the error names the override and what is allowed)
            raise exc.with_source(str(run_dir / CONFIG_FILE)) from None
        raise CheckpointError(f"{run_dir}: stored config does not validate against this acezoo: {exc}") from None


def _check_registered(run_dir: Path, raw: dict[str, Any]) -> None:
    """Import the stored config's ``imports``; then its arch and data set must be registered."""
    names = raw.get("imports") or []
    try:
        import_modules(names if isinstance(names, list) else [], near=run_dir)
    except PluginImportError as exc:
        arch = raw.get("model", {}).get("arch") if isinstance(raw.get("model"), dict) else None
        raise CheckpointError(f"{run_dir}: the run's config imports {', '.join(map(str, names))} (its architecture "
                              f"is {arch!r}), and here {exc}; run from the folder that holds the module, or put it "
                              "on PYTHONPATH") from None
    for key, tag, table, kind in (("model", "arch", registry.architectures(), "architecture"),
                                  ("data", "dataset", registry.datasets(), "data set")):
        name = raw.get(key, {}).get(tag) if isinstance(raw.get(key), dict) else None
        if isinstance(name, str) and name not in table:
            imported = f" (the run imports {', '.join(map(str, names))}, which registers no {name!r})" if names else ""
            raise CheckpointError(f"{run_dir}: the run's {kind} {name!r} is not registered in this acezoo{imported}; "
                                  f"known: {', '.join(sorted(table))}. {HOW_TO_REGISTER_SENTENCE}")


def load_run(run_dir: str | Path, overrides: tuple[str, ...] = ()) -> tuple[ZooConfig, RelaxedModel]:
    """The config and the selected relaxed model of a finished (or interrupted) run."""
    config = stored_config(run_dir, overrides)
    model = compile_model(config)
    load_weights(model, Path(run_dir) / WEIGHTS_FILE)
    return config, model
