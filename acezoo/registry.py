"""Registries of architectures and data sets.

An architecture binds a name, its pydantic spec class, a builder ``builder(spec) -> nn.Module``
and the symmetry its equivariant part respects. Registration happens with the decorator
:func:`register_arch`, in acezoo itself, in user code, or in an installed package that
declares an entry point in the group ``acezoo.architectures`` (loading the entry point is
expected to run the decorator). Data sets are registered the same way with
:func:`register_dataset` (entry-point group ``acezoo.datasets``).
"""
from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Callable, Literal, TypeVar, get_args, get_origin

from pydantic import create_model

from acezoo.config.base import ArchSpec, DatasetSpec

__all__ = [
    "ArchEntry",
    "DatasetEntry",
    "register_arch",
    "register_dataset",
    "get_arch",
    "get_dataset",
    "architectures",
    "datasets",
    "registry_version",
    "lazy_builder",
    "LazyBuilder",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ArchEntry:
    """A registered architecture."""

    name: str
    spec: type[ArchSpec]
    builder: Callable[[Any], Any]
    symmetry: str
    description: str
    examples: dict[str, dict[str, Any]] = field(default_factory=lambda: {"default": {}})

    def example_specs(self) -> dict[str, ArchSpec]:
        """The validated example specs, by name (``default`` is the spec with no fields set)."""
        return {name: self.spec(**fields) for name, fields in self.examples.items()}


@dataclass(frozen=True)
class DatasetEntry:
    """A registered data set."""

    name: str
    spec: type[DatasetSpec]
    builder: Callable[[Any], Any]
    description: str


class LazyBuilder:
    """A builder named ``"module:function"``, imported on its first call (keeps torch, e3nn and
    torch_geometric out of config validation and listing)."""

    def __init__(self, target: str) -> None:
        module, _, function = target.partition(":")
        if not module or not function:
            raise ValueError(f"a lazy builder is named 'module:function', got {target!r}")
        self.target = target
        self._module, self._function = module, function
        self._resolved: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """The builder function itself (imports its module)."""
        if self._resolved is None:
            self._resolved = getattr(import_module(self._module), self._function)
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"LazyBuilder({self.target!r})"


def lazy_builder(target: str) -> LazyBuilder:
    """A builder imported from ``"module:function"`` when first called; pass it to the
    decorators, ``register_arch(...)(lazy_builder("pkg.models:build"))``, to register an
    architecture or data set without importing its code."""
    return LazyBuilder(target)


_ARCHS: dict[str, ArchEntry] = {}
_DATASETS: dict[str, DatasetEntry] = {}
_VERSION = [0]
_PLUGINS_LOADED = [False]


def registry_version() -> int:
    """A counter bumped at each registration (lets callers cache derived schemas)."""
    _load_plugins()
    return _VERSION[0]


def _with_tag(spec: type, field: str, name: str, base: type) -> type:
    """Return ``spec`` with ``field: Literal[name]`` (adding it by subclassing if needed)."""
    if not (isinstance(spec, type) and issubclass(spec, base)):
        raise TypeError(f"spec must be a subclass of {base.__name__}, got {spec!r}")
    info = spec.model_fields.get(field)
    if info is not None and get_origin(info.annotation) is Literal and get_args(info.annotation) == (name,):
        return spec
    return create_model(spec.__name__, __base__=spec, __module__=spec.__module__, **{field: (Literal[name], name)})


def register_arch(
    name: str,
    *,
    spec: type[ArchSpec],
    symmetry: str = "e3_points",
    examples: dict[str, dict[str, Any]] | None = None,
    description: str | None = None,
) -> Callable[[F], F]:
    """Decorator registering ``builder(spec) -> nn.Module`` as architecture ``name``.

    The builder wraps each block it wants relaxed in :class:`acezoo.Relaxed`. ``symmetry``
    names the group action its equivariant part respects (see :mod:`acezoo.symmetry`); the
    registry-parametrized tests use it to check every registered architecture, on its default
    spec and on each of ``examples`` (name -> spec fields, e.g. another input mode or head),
    so that every mode an architecture offers is tested for its symmetry. ``description``
    (default: the builder's docstring's first line) is what ``acezoo list`` shows.
    """

    def decorate(builder: F) -> F:
        tagged = _with_tag(spec, "arch", name, ArchSpec)
        cases = {"default": {}, **(examples or {})}
        for case, fields in cases.items():  # fail at registration, not in a test run
            tagged(**fields)
        _ARCHS[name] = ArchEntry(name, tagged, builder, symmetry, _describe(description, builder, tagged), cases)
        _VERSION[0] += 1
        return builder

    return decorate


def register_dataset(name: str, *, spec: type[DatasetSpec], description: str | None = None) -> Callable[[F], F]:
    """Decorator registering ``builder(spec) -> DataBundle`` as data set ``name``."""

    def decorate(builder: F) -> F:
        tagged = _with_tag(spec, "dataset", name, DatasetSpec)
        _DATASETS[name] = DatasetEntry(name, tagged, builder, _describe(description, builder, tagged))
        _VERSION[0] += 1
        return builder

    return decorate


def _describe(description: str | None, builder: Any, spec: type) -> str:
    """The given description, else the first line of the builder's (or spec's) docstring."""
    if description:
        return description
    own_doc = None if isinstance(builder, LazyBuilder) else builder.__doc__
    doc = (own_doc or spec.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def _load_plugins() -> None:
    """Import acezoo's own architectures/data sets, then those of installed plugins."""
    if _PLUGINS_LOADED[0]:
        return
    _PLUGINS_LOADED[0] = True
    import acezoo.archs  # noqa: F401  (registers the built-in architectures)
    import acezoo.data  # noqa: F401  (registers the built-in data sets)

    for group in ("acezoo.architectures", "acezoo.datasets"):
        for ep in entry_points(group=group):
            try:
                loaded = ep.load()
                if callable(loaded) and not isinstance(loaded, type):
                    loaded()
            except Exception as exc:  # a broken plugin must not break acezoo
                warnings.warn(f"acezoo plugin {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)


def architectures() -> dict[str, ArchEntry]:
    """All registered architectures by name."""
    _load_plugins()
    return dict(_ARCHS)


def datasets() -> dict[str, DatasetEntry]:
    """All registered data sets by name."""
    _load_plugins()
    return dict(_DATASETS)


def _lookup(table: dict[str, Any], name: str, kind: str) -> Any:
    _load_plugins()
    if name not in table:
        from acezoo.plugins import HOW_TO_REGISTER_SENTENCE

        close = difflib.get_close_matches(name, list(table), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}.{hint} {HOW_TO_REGISTER_SENTENCE}")
    return table[name]


def get_arch(name: str) -> ArchEntry:
    """The registered architecture ``name`` (``KeyError`` listing known names otherwise)."""
    return _lookup(_ARCHS, name, "architecture")


def get_dataset(name: str) -> DatasetEntry:
    """The registered data set ``name`` (``KeyError`` listing known names otherwise)."""
    return _lookup(_DATASETS, name, "dataset")
