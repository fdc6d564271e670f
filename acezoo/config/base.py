"""Base classes for the pydantic models that make up a zoo config.

Every config model forbids unknown keys, so a typo is an error rather than a silently
ignored setting. Architecture specs and data set specs are subclassed by each registered
architecture / data set; their ``arch`` / ``dataset`` field is the discriminator.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel", "ArchSpec", "DatasetSpec"]


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ArchSpec(StrictModel):
    """Base of every architecture spec. Subclasses set ``arch: Literal["<name>"]``."""

    arch: str


class DatasetSpec(StrictModel):
    """Base of every data set spec. Subclasses set ``dataset: Literal["<name>"]``."""

    dataset: str
