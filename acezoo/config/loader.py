"""Read a zoo config: YAML through omegaconf (interpolation, dot-list overrides), then pydantic.

Every failure becomes a :class:`~acezoo.errors.ConfigError` naming the file, the field path
and what is allowed.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from acezoo.config.problems import did_you_mean, problems
from acezoo.config.schema import ZooConfig, config_class
from acezoo.errors import ConfigError
from acezoo.paths import repo_zoo_configs_dir
from acezoo.plugins import PluginImportError, import_modules

__all__ = ["load_config", "resolve_config_path", "config_from_dict", "import_config_modules", "dump_config",
           "zoo_config_paths"]


def zoo_config_paths() -> dict[str, Path]:
    """The zoo configs shipped in ``zoo_configs/`` by name (file stem)."""
    folder = repo_zoo_configs_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def resolve_config_path(path_or_name: str | Path) -> Path:
    """A path as given if it exists, else a zoo config of that name (the closest names suggested)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    zoo = zoo_config_paths()
    if str(path_or_name) in zoo:
        return zoo[str(path_or_name)]
    if path.is_dir():
        raise ConfigError([("", "is a directory, expected a YAML config file")], str(path))
    looks_like_file = path.suffix in (".yaml", ".yml") or len(path.parts) > 1
    what = "no such config file" if looks_like_file else "no such config file or zoo config name"
    hint = did_you_mean(path.stem if looks_like_file else str(path_or_name), list(zoo))
    more = f"; `acezoo list` shows the {len(zoo)} zoo configs" if zoo else ""
    raise ConfigError([("", f"{what}{hint}{more}")], str(path))


def import_config_modules(data: Any, source: str | None = None) -> None:
    """Import the modules a config dict's ``imports`` lists (they may register its arch or data
    set), looking next to the config file too; a module that fails is a :class:`ConfigError`."""
    names = data.get("imports") if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return  # validation reports a malformed list
    try:
        import_modules(names, near=Path(source).parent if source else None)
    except PluginImportError as exc:
        raise ConfigError([("imports", str(exc))], source) from None


def config_from_dict(data: dict[str, Any], source: str | None = None) -> ZooConfig:
    """Validate a plain dict into a ``ZooConfig`` (errors as ``ConfigError``), after importing
    the modules its ``imports`` lists."""
    import_config_modules(data, source)
    cls = config_class()
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems(exc, cls), source) from None


def _override_of(field: str, overrides: Sequence[str]) -> str | None:
    """The override (``key=value``) that set ``field`` or a key above or below it, if any."""
    for text in reversed(overrides):
        key = text.partition("=")[0].strip()
        if key and (field == key or field.startswith(key + ".") or key.startswith(field + ".")):
            return text
    return None


def _blame_overrides(exc: ConfigError, overrides: Sequence[str], source: str) -> ConfigError:
    """``exc`` reported against the command-line override at fault, with its value, when every
    problem comes from one; else against the file, each override's problem marked as such."""
    culprits = [_override_of(field, overrides) if field else None for field, _ in exc.problems]
    if culprits and all(culprits) and len(set(culprits)) == 1:
        return ConfigError(exc.problems, f"override {culprits[0]} (on {source})")
    marked = [(f"{field} (override {c})" if c else field, msg) for (field, msg), c in zip(exc.problems, culprits)]
    return ConfigError(marked, source)


def load_config(path: str | Path, overrides: Sequence[str] = (), imports: Sequence[str] = ()) -> ZooConfig:
    """Load, override (``key=value`` dot-list) and validate a zoo config.

    ``imports``: modules to import too (``--import``), added to the config's ``imports`` so that
    the run's stored config names them. A problem that an override causes is reported as that
    override, with its value.
    """
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
            raise ConfigError([("", "must look like key=value (e.g. train.epochs=5)")],
                              f"override {item} (on {source})")
    try:
        if overrides:
            conf = OmegaConf.merge(conf, OmegaConf.from_dotlist(list(overrides)))
        data = OmegaConf.to_container(conf, resolve=True)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", None) or "")
        error = ConfigError([(key, str(exc).splitlines()[0])], source)
        raise (_blame_overrides(error, overrides, source) if key else error) from None
    if imports and isinstance(data, dict):
        listed = data.get("imports") if isinstance(data.get("imports"), list) else []
        data["imports"] = list(dict.fromkeys([*listed, *imports]))
    try:
        return config_from_dict(data, source)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise (_blame_overrides(exc, overrides, source) if overrides else exc) from None


def dump_config(config: ZooConfig) -> str:
    """The resolved config as YAML (what a checkpoint stores)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(config.model_dump(mode="json")))
