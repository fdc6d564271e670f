"""Base classes for the pydantic models that make up a zoo config.

Every config model forbids unknown keys, so a typo is an error rather than a silently
ignored setting. Architecture specs and data set specs are subclassed by each registered
architecture / data set; their ``arch`` / ``dataset`` field is the discriminator.
"""
from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from acezoo.config.io_fields import ModelIO

__all__ = ["StrictModel", "ArchSpec", "DatasetSpec"]


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ArchSpec(StrictModel):
    """Base of every architecture spec. Subclasses set ``arch: Literal["<name>"]``."""

    arch: str

    def io(self) -> ModelIO | None:
        """The fields the network reads from a batch and returns, with their shapes (see
        :mod:`acezoo.config.io_fields`); None: not declared (inputs are then not checked)."""
        return None


class DatasetSpec(StrictModel):
    """Base of every data set spec. Subclasses set ``dataset: Literal["<name>"]``."""

    dataset: str
    #: whether models predict the standardised target ``(y - mean) / std`` (the trainer then stores
    #: ``target_scale`` with the run's metrics, and ``model.acezoo_inputs.to_units`` undoes it)
    standardised_target: ClassVar[bool] = False

    def field_notes(self) -> dict[str, str]:
        """What each model input / output field (``pos``, ``y``, ...) means in this task, with its
        units, by field name; shown beside the architecture's shapes in model cards."""
        return {}

    def input_helper(self, io: ModelIO) -> str | None:
        """The call that builds this task's model input from a user's tensors (None: the default
        for the architecture's inputs, e.g. ``acezoo.point_cloud(...)``)."""
        return None
