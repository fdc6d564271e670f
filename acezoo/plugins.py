"""Import the user's own modules that register architectures or data sets.

Three ways make an architecture defined outside acezoo known (each runs its
``@acezoo.register_arch`` decorator by importing its module):

- ``--import MODULE`` (repeatable) on the command line;
- ``imports: [MODULE, ...]`` in a config: imported before the config is validated, and kept in
  the run's stored config, so that ``acezoo eval``, ``--resume`` and ``acezoo.load`` import
  them again;
- an installed package's entry point in the group ``acezoo.architectures`` (data sets:
  ``acezoo.datasets``), loaded on first use of the registry.

A module is looked up on ``sys.path`` and then in the current folder and the config's folder
(appended to ``sys.path``, as ``python -m`` does for the current folder), so ``mymod.py``
beside you needs no installing.
"""
from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path

from acezoo.errors import AcezooError

__all__ = ["import_modules", "PluginImportError", "HOW_TO_REGISTER", "HOW_TO_REGISTER_SENTENCE", "MODULE_NAME"]

MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
HOW_TO_REGISTER = ("an architecture or data set defined in your own module becomes known when that module is "
                   "imported: `--import MODULE` on the command line, `imports: [MODULE]` in the config, or an "
                   "installed entry point (groups `acezoo.architectures`, `acezoo.datasets`)")
HOW_TO_REGISTER_SENTENCE = HOW_TO_REGISTER[0].upper() + HOW_TO_REGISTER[1:] + "."


class PluginImportError(AcezooError):
    """A module named by ``--import`` or a config's ``imports`` cannot be imported."""

    exit_code = 2


def _where_it_failed(exc: BaseException) -> str:
    """`` (file.py, line 12)`` of the innermost frame, or ``""``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename}, line {exc.lineno})"
    return f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""


def import_modules(names: Iterable[str], near: str | Path | None = None) -> None:
    """Import each module of ``names`` (once); ``near``: a folder also searched (a config's).

    Raises :class:`PluginImportError` naming the module and what went wrong: not found (and
    where it was looked for), or the exception its code raised (with file and line).
    """
    for name in names:
        if not isinstance(name, str) or not MODULE_NAME.match(name):
            raise PluginImportError(f"{name!r} is not a module name (e.g. mymod or pkg.models)")
        if name in sys.modules:
            continue
        folders = [Path.cwd()] + ([Path(near).resolve()] if near is not None else [])
        for folder in folders:
            if str(folder) not in sys.path:
                sys.path.append(str(folder))  # after everything installed: never shadows a package
        try:
            import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                looked = ", ".join(dict.fromkeys(str(f) for f in folders))
                raise PluginImportError(f"cannot import module {name!r}: no {name.split('.')[0]}.py or package "
                                        f"{name.split('.')[0]}/ in {looked} or on sys.path") from None
            raise PluginImportError(f"importing module {name!r} failed: {exc}{_where_it_failed(exc)}") from None
        except Exception as exc:  # the module's own code failed
            raise PluginImportError(f"importing module {name!r} failed: {type(exc).__name__}: {exc}"
                                    f"{_where_it_failed(exc)}") from None
