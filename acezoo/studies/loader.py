"""Read and check a study file: YAML, then the :class:`StudySpec` schema, then every trial's zoo
config (so a bad override fails before any trial starts, naming the contender and the field).

Relative paths (``base``, ``records``) are taken from the current directory, as every
command of the README is run from the repository root; ``base`` is also looked up next to the
study file and among the zoo config names.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from acezoo.config.problems import problems
from acezoo.errors import ConfigError
from acezoo.studies.schema import StudySpec

__all__ = ["Study", "load_study", "trial_overrides"]


@dataclass(frozen=True)
class Study:
    """A validated study file with its paths resolved."""

    spec: StudySpec
    source: Path
    base: Path
    records: Path
    continues: Path | None = None  # the earlier study file (``continues:``)

    @property
    def name(self) -> str:
        return self.spec.name


def trial_overrides(spec: StudySpec, contender: str, seed: int) -> list[str]:
    """Every override of one trial, in the order they apply (later wins): common, contender's, seed."""
    return [*spec.common, *spec.contender(contender).overrides, f"seed={seed}"]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError([("", f"cannot read study file: {exc.strerror or exc}")], str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([("", f"YAML syntax error at {where}{getattr(exc, 'problem', None) or exc}")],
                          str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError([("", "expected a mapping (name, base, contenders, seeds, ...) at the top level")], str(path))
    return data


def _resolve_continues(name: str, source: Path) -> Path:
    for candidate in (Path(name), source.parent / name):
        if candidate.is_file():
            return candidate
    raise ConfigError([("continues", f"no such study file: {name}")], str(source))


def _resolve_base(base: str, source: Path) -> Path:
    from acezoo.config.loader import resolve_config_path

    for candidate in (Path(base), source.parent / base):
        if candidate.is_file():
            return candidate
    try:
        return resolve_config_path(base)
    except ConfigError as exc:
        raise ConfigError([("base", exc.problems[0][1])], str(source)) from None


def _check_trials(spec: StudySpec, base: Path, source: Path) -> None:
    """Every contender's config must load and validate (with the first seed)."""
    from acezoo.config.loader import load_config

    for i, contender in enumerate(spec.contenders):
        try:
            load_config(base, trial_overrides(spec, contender.name, spec.seeds[0]))
        except ConfigError as exc:
            common = {o.partition("=")[0] for o in spec.common}
            field = f"contenders[{i}].overrides ({contender.name})"
            details = "; ".join(f"{f}: {m}" if f else m for f, m in exc.problems)
            culprit = exc.source or ""
            if culprit.startswith("override ") and culprit.split()[1].partition("=")[0] in common:
                field = "common"
            where = f" [{culprit}]" if culprit.startswith("override ") else ""
            raise ConfigError([(field, f"{details}{where}")], str(source)) from None


def load_study(path: str | Path, check_trials: bool = True) -> Study:
    """Load ``path`` into a :class:`Study`; any problem is a :class:`ConfigError` naming the file and field.

    ``check_trials``: also build every contender's zoo config (imports its plugins).
    """
    from acezoo.plugins import PluginImportError, import_modules

    source = Path(path)
    if not source.is_file():
        raise ConfigError([("", "no such study file" + ("" if source.suffix else " (study files are YAML)"))],
                          str(source))
    data = _read_yaml(source)
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems(exc, StudySpec), str(source)) from None
    if spec.imports:
        try:
            import_modules(spec.imports, near=source.parent)
        except PluginImportError as exc:
            raise ConfigError([("imports", str(exc))], str(source)) from None
    base = _resolve_base(spec.base, source)
    if check_trials:
        _check_trials(spec, base, source)
    records = Path(spec.records) if spec.records else Path("studies") / spec.name
    continues = _resolve_continues(spec.continues, source) if spec.continues else None
    return Study(spec, source, base, records, continues)
