"""Group actions used to test and measure equivariance.

A :class:`Symmetry` knows how to make a small random input for an architecture, draw a
random group element, and act with it on inputs and outputs. Each registered architecture
names its symmetry; the registry-parametrized tests and the trainer's equivariance error
use it, so a newly registered architecture is checked with no new test code.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch_geometric.data import Batch

from acezoo.data.graphs import fully_connected_edge_index
from acezoo.data.tensor_graphs import GraphTensorDataset

__all__ = ["Symmetry", "E3Points", "get_symmetry", "SYMMETRIES", "equivariance_error", "random_orthogonal"]


def random_orthogonal(generator: torch.Generator, dtype: torch.dtype, reflect: bool | None = None) -> torch.Tensor:
    """A random 3x3 orthogonal matrix; ``reflect`` forces det -1 (True) or +1 (False)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if reflect is None:
        reflect = bool(torch.rand((), generator=generator) < 0.5)
    if (torch.det(q) < 0) != reflect:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


class Symmetry(ABC):
    """A group acting on an architecture's inputs and outputs."""

    name: str

    @abstractmethod
    def example_input(self, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> Any:
        """A small random input."""

    @abstractmethod
    def sample(self, inputs: Any, generator: torch.Generator, **kind: Any) -> Any:
        """A random group element suited to ``inputs``."""

    @abstractmethod
    def act_input(self, inputs: Any, g: Any) -> Any:
        """``g . inputs``."""

    @abstractmethod
    def act_output(self, output: torch.Tensor, g: Any) -> torch.Tensor:
        """``g . output``."""


@dataclass
class E3Element:
    rotation: torch.Tensor  # (3, 3) orthogonal
    translation: torch.Tensor  # (3,)
    perm: torch.Tensor  # (n,) node permutation that keeps each node in its graph


@dataclass
class E3Points(Symmetry):
    """E(3) x node permutations on point-cloud graphs whose output is a point per node.

    ``points`` are translated and rotated, ``vectors`` only rotated; every other node
    field is invariant.
    """

    name: str = "e3_points"
    points: tuple[str, ...] = ("pos", "y")
    vectors: tuple[str, ...] = ("vel",)

    def example_input(self, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> Batch:
        graphs, nodes = 3, 5
        charge = torch.randint(0, 2, (graphs, nodes, 1), generator=generator).to(dtype) * 2 - 1
        fields = {
            "pos": torch.randn(graphs, nodes, 3, generator=generator, dtype=dtype),
            "vel": torch.randn(graphs, nodes, 3, generator=generator, dtype=dtype),
            "charge": charge,
            "y": torch.randn(graphs, nodes, 3, generator=generator, dtype=dtype),
        }
        return GraphTensorDataset(fields, fully_connected_edge_index(nodes)).collate(range(graphs))

    def sample(
        self,
        inputs: Batch,
        generator: torch.Generator,
        rotate: bool = True,
        reflect: bool | None = None,
        translate: bool = True,
        permute: bool = True,
    ) -> E3Element:
        dtype = inputs.pos.dtype
        rot = random_orthogonal(generator, dtype, reflect) if rotate else torch.eye(3, dtype=dtype)
        if not rotate and reflect:
            rot = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=dtype))
        shift = 3 * torch.randn(3, generator=generator, dtype=dtype) if translate else torch.zeros(3, dtype=dtype)
        n = inputs.pos.shape[0]
        perm = torch.arange(n)
        if permute:
            ptr = inputs.ptr.tolist()
            for a, b in zip(ptr[:-1], ptr[1:]):
                perm[a:b] = a + torch.randperm(b - a, generator=generator)
        return E3Element(rot.to(inputs.pos.device), shift.to(inputs.pos.device), perm.to(inputs.pos.device))

    def act_input(self, inputs: Batch, g: E3Element) -> Batch:
        out = inputs.clone()
        n = inputs.pos.shape[0]
        for key in inputs.keys():
            value = inputs[key]
            if not (isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n) or key in ("batch",):
                continue
            value = value[g.perm]
            if key in self.points:
                value = value @ g.rotation.T + g.translation
            elif key in self.vectors:
                value = value @ g.rotation.T
            out[key] = value
        # node i of the new graph is node perm[i] of the old one: relabel the edges
        inverse = torch.empty_like(g.perm)
        inverse[g.perm] = torch.arange(n, device=g.perm.device)
        out.edge_index = inverse[inputs.edge_index]
        return out

    def act_output(self, output: torch.Tensor, g: E3Element) -> torch.Tensor:
        return output[g.perm] @ g.rotation.T + g.translation


SYMMETRIES: dict[str, Callable[[], Symmetry]] = {"e3_points": E3Points}


def get_symmetry(name: str) -> Symmetry:
    """The symmetry registered under ``name``."""
    if name not in SYMMETRIES:
        raise KeyError(f"unknown symmetry {name!r}; known: {', '.join(SYMMETRIES)}")
    return SYMMETRIES[name]()


@torch.no_grad()
def equivariance_error(
    model: Callable[[Any], torch.Tensor], inputs: Any, symmetry: Symmetry, generator: torch.Generator, **kind: Any
) -> float:
    """Relative equivariance error ``||f(g.x) - g.f(x)|| / ||f(x) - mean||`` for a random ``g``."""
    g = symmetry.sample(inputs, generator, **kind)
    out = model(inputs)
    lhs = model(symmetry.act_input(inputs, g))
    rhs = symmetry.act_output(out, g)
    scale = (out - out.mean(dim=0, keepdim=True)).norm().clamp_min(1e-12)
    return float((lhs - rhs).norm() / scale)
