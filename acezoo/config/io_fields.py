"""What a model reads and returns: named fields with symbolic shapes (no torch).

An architecture spec states its inputs and outputs as :class:`IOField` s (its ``io()`` method);
a data set spec adds what the fields mean in its task, with units (``field_notes()``). The
model card, ``acezoo info NAME`` and a loaded model's ``acezoo_inputs`` show both, and
:mod:`acezoo.inputs.check` checks a batch against them before any layer runs.

Shape symbols: ``n`` nodes of the batch (every graph's nodes, stacked), ``E`` edges, ``B``
graphs or images, ``H``, ``W`` image height and width; an integer is a fixed size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["IOField", "ModelIO", "shape_text"]


def shape_text(shape: tuple[str | int, ...]) -> str:
    """``("n", 3)`` -> ``"(n, 3)"``; ``("n",)`` -> ``"(n,)"``."""
    inner = ", ".join(str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


@dataclass(frozen=True)
class IOField:
    """One named input or output of a model.

    ``shape`` uses the symbols of the module docstring; ``dtype`` is ``float`` or ``int``;
    ``required=False`` marks an input the model reads only when present (e.g. ``batch``).
    """

    name: str
    shape: tuple[str | int, ...]
    meaning: str
    dtype: str = "float"
    required: bool = True

    @property
    def shape_text(self) -> str:
        return shape_text(self.shape)


@dataclass(frozen=True)
class ModelIO:
    """The inputs and outputs of an architecture for one spec.

    ``tensor_input`` names the input a bare tensor stands for (images: ``x``, so that
    ``model(images)`` works); None: the model reads a batch object by attribute.
    """

    inputs: tuple[IOField, ...]
    outputs: tuple[IOField, ...]
    tensor_input: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def input(self, name: str) -> IOField | None:
        """The input field called ``name``, if the model reads one."""
        return next((f for f in self.inputs if f.name == name), None)
