"""Read a zoo config: YAML through omegaconf (interpolation, dot-list overrides), then pydantic.

Every failure becomes a :class:`~acezoo.errors.ConfigError` naming the file, the field path
and what is allowed.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import difflib

import yaml
from pydantic import ValidationError

from acezoo.config.schema import ZooConfig, config_class
from acezoo.errors import ConfigError
from acezoo.paths import repo_zoo_configs_dir

__all__ = ["load_config", "resolve_config_path", "config_from_dict", "dump_config", "zoo_config_paths"]


def zoo_config_paths() -> dict[str, Path]:
    """The zoo configs shipped in ``zoo_configs/`` by name (file stem)."""
    folder = repo_zoo_configs_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def resolve_config_path(path_or_name: str | Path) -> Path:
    """A path as given if it exists, else a zoo config of that name."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    zoo = zoo_config_paths()
    if str(path_or_name) in zoo:
        return zoo[str(path_or_name)]
    if path.is_dir():
        raise ConfigError([("", "is a directory, expected a YAML config file")], str(path))
    hint = f" Zoo configs: {', '.join(zoo)}." if zoo else ""
    raise ConfigError([("", "no such config file or zoo config name." + hint)], str(path))


def _format_loc(loc: Sequence[Any], tagged: bool = True) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        # pydantic puts the union tag (e.g. 'egnn') into the location of union members;
        # it is not a key of the user's file, so drop it.
        if tagged and i == 1 and loc[0] in ("model", "data") and isinstance(item, str):
            continue
        parts.append(f"[{item}]" if isinstance(item, int) else str(item))
    return ".".join(parts).replace(".[", "[")


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg, kind, ctx = err["msg"], err["type"], err.get("ctx") or {}
        if kind == "extra_forbidden":
            msg = "unknown key"
        elif kind == "value_error":  # our validators' messages say what is wrong and what is allowed
            msg = msg.removeprefix("Value error, ")
        elif kind == "union_tag_invalid":
            tag, key = ctx.get("tag"), ctx.get("discriminator", "").strip("'")
            allowed = ctx.get("expected_tags", "")
            close = difflib.get_close_matches(str(tag), [t.strip(" '") for t in allowed.split(",")], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append((_format_loc((*loc, key), tagged=False), f"unknown value {tag!r}{hint}; allowed: {allowed}"))
            continue
        elif kind == "union_tag_not_found":
            key = ctx.get("discriminator", "").strip("'")
            out.append((_format_loc((*loc, key), tagged=False), "missing; it selects the kind of " + str(loc[0])))
            continue
        out.append((_format_loc(loc), msg))
    return out


def config_from_dict(data: dict[str, Any], source: str | None = None) -> ZooConfig:
    """Validate a plain dict into a ``ZooConfig`` (errors as ``ConfigError``)."""
    try:
        return config_class().model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc), source) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ZooConfig:
    """Load, override (``key=value`` dot-list) and validate a zoo config."""
    from omegaconf import OmegaConf  # imported here: reading a stored, resolved config does not need it
    from omegaconf.errors import OmegaConfBaseException

    file = resolve_config_path(path)
    source = str(file)
    try:
        conf = OmegaConf.load(file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([("", f"YAML syntax error at {where}{problem}")], source) from None
    except (OSError, OmegaConfBaseException) as exc:
        raise ConfigError([("", f"cannot read config: {exc}")], source) from None
    if not OmegaConf.is_dict(conf):
        raise ConfigError([("", "expected a mapping at the top level of the YAML file")], source)
    for item in overrides:
        if "=" not in item:
            raise ConfigError([(item, "override must look like key=value (e.g. train.epochs=5)")], source)
    try:
        if overrides:
            conf = OmegaConf.merge(conf, OmegaConf.from_dotlist(list(overrides)))
        data = OmegaConf.to_container(conf, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        msg = str(exc).splitlines()[0]
        raise ConfigError([(str(key), msg)], source) from None
    return config_from_dict(data, source)  # type: ignore[arg-type]


def dump_config(config: ZooConfig) -> str:
    """The resolved config as YAML (what a checkpoint stores)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(config.model_dump(mode="json")))
