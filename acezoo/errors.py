"""Errors that acezoo reports to users.

Each carries enough context (file, field path, what is allowed) for the CLI to print one
clear line and exit with status 2, with no traceback.
"""
from __future__ import annotations

__all__ = ["AcezooError", "ConfigError", "TrainingDiverged", "CheckpointError", "OptionError", "InputError",
           "TrackingUnavailable", "RegistryUnavailable"]


class AcezooError(Exception):
    """Base class of errors meant for the user rather than the developer."""

    exit_code = 1


class ConfigError(AcezooError, ValueError):
    """A configuration file or override is invalid.

    ``problems`` is a list of ``(field_path, message)``; ``source`` the file (or ``None``).
    """

    exit_code = 2

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        super().__init__(self._format())

    def with_source(self, source: str) -> "ConfigError":
        """The same problems, attributed to ``source`` when no file was named yet."""
        return self if self.source else ConfigError(self.problems, source)

    def _format(self) -> str:
        where = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            field, msg = self.problems[0]
            return f"{where}invalid config: {field}: {msg}" if field else f"{where}{msg}"
        lines = [f"{where}invalid config ({len(self.problems)} problems):"]
        lines += [f"  - {field}: {msg}" if field else f"  - {msg}" for field, msg in self.problems]
        return "\n".join(lines)


class CheckpointError(AcezooError):
    """A checkpoint directory is missing, incomplete, corrupt or incompatible."""

    exit_code = 2


class OptionError(AcezooError, ValueError):
    """A command-line option has a bad value (the message names the option and what is allowed)."""

    exit_code = 2


class InputError(AcezooError, ValueError):
    """A model's input lacks a field or has one of the wrong shape, dtype or device (the message
    names the field and what the model expects)."""

    exit_code = 2


class TrainingDiverged(AcezooError):
    """The loss became NaN or infinite."""

    exit_code = 1


class TrackingUnavailable(AcezooError):
    """The MLflow tracking server (or store) cannot be used; the message names its URI and how to train without it."""

    exit_code = 2


class RegistryUnavailable(AcezooError):
    """The model registry cannot be reached and the local cache cannot stand in for it."""

    exit_code = 2
