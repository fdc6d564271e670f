"""A plain multi-layer perceptron."""
from __future__ import annotations

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Sequential):
    """``Linear -> act -> ... -> Linear`` through the given widths.

    ``last_act`` adds the activation after the final layer too.
    """

    def __init__(self, widths: list[int], act: type[nn.Module] = nn.SiLU, last_act: bool = False) -> None:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2 or last_act:
                layers.append(act())
        super().__init__(*layers)
