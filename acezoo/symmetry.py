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

__all__ = [
    "Symmetry", "E3Points", "E3GraphInvariant", "E3GraphTensor", "ImageGroup", "get_symmetry", "symmetry_for", "SYMMETRIES", "equivariance_error",
    "random_orthogonal",
]


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
    """A group acting on an architecture's inputs and outputs.

    ``actions`` names the kinds of group element the tests check separately (keyword
    arguments of :meth:`sample`); the symmetry-breaking branch of a relaxed model must break
    those in ``broken_by_branch`` and keep those in ``kept_by_branch``.
    """

    name: str
    actions: dict[str, dict[str, Any]] = {}
    broken_by_branch: tuple[str, ...] = ()
    kept_by_branch: tuple[str, ...] = ()

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
    actions = {
        "rotation": dict(rotate=True, reflect=False, translate=False, permute=False),
        "reflection": dict(rotate=False, reflect=True, translate=False, permute=False),
        "roto-reflection": dict(rotate=True, reflect=True, translate=False, permute=False),
        "translation": dict(rotate=False, reflect=False, translate=True, permute=False),
        "permutation": dict(rotate=False, reflect=False, translate=False, permute=True),
        "all": dict(rotate=True, reflect=None, translate=True, permute=True),
    }
    broken_by_branch = ("rotation", "translation")
    kept_by_branch = ("permutation",)  # the branch is applied node by node

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


@dataclass
class E3GraphInvariant(E3Points):
    """E(3) x node permutations acting on molecules (``pos``, one-hot atom types); the output is
    one invariant vector per graph, unchanged by every group element."""

    name: str = "e3_graph_invariant"
    points: tuple[str, ...] = ("pos",)
    vectors: tuple[str, ...] = ()
    atom_types: int = 5

    def example_input(self, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> Batch:
        graphs, nodes = 3, 5
        kinds = torch.randint(0, self.atom_types, (graphs, nodes), generator=generator)
        fields = {
            "pos": 1.5 * torch.randn(graphs, nodes, 3, generator=generator, dtype=dtype),
            "onehot": torch.nn.functional.one_hot(kinds, self.atom_types).to(dtype),
        }
        return GraphTensorDataset(fields, fully_connected_edge_index(nodes)).collate(range(graphs))

    def act_output(self, output: torch.Tensor, g: E3Element) -> torch.Tensor:
        return output


@dataclass
class E3GraphTensor(E3GraphInvariant):
    """E(3) x node permutations acting on molecules whose output is a symmetric 3x3 tensor per
    graph (e.g. a polarizability): ``A -> R A R^T`` (translations and permutations leave it be;
    a reflection's sign cancels in the two factors)."""

    name: str = "e3_graph_tensor"

    def act_output(self, output: torch.Tensor, g: E3Element) -> torch.Tensor:
        return g.rotation @ output @ g.rotation.T


def _e3(spec: Any = None) -> Symmetry:
    """Point symmetry of an E(3) architecture: per-node points, per-graph invariants or tensors."""
    output = getattr(spec, "output", None)
    if output == "graph":
        return E3GraphInvariant(atom_types=getattr(spec, "atom_types", 5))
    if output == "tensor":
        return E3GraphTensor(atom_types=getattr(spec, "atom_types", 5))
    return E3Points()


@dataclass
class ImageElement:
    rot: int  # number of counter-clockwise quarter turns
    flip: bool  # mirror the last axis first


@dataclass
class ImageGroup(Symmetry):
    """The square's rotations (``C4``) or rotations and mirrors (``D4``) on images.

    Inputs are batches with ``x`` of shape ``(B, C, H, W)``; the element ``(r, m)`` acts as
    ``rot90^r o flip^m`` on the last two axes. Outputs are either ``invariant`` (logits,
    unchanged) or ``image`` (transformed like the input).
    """

    name: str = "image_group"
    group: str = "C4"
    channels: int = 1
    size: int = 9
    output: str = "invariant"

    def __post_init__(self) -> None:
        self.actions = {"rot90": dict(rotate=True, reflect=False)}
        if self.group == "D4":
            self.actions["flip"] = dict(rotate=False, reflect=True)
            self.actions["roto-flip"] = dict(rotate=True, reflect=True)
        self.actions["all"] = dict(rotate=True, reflect=None)
        self.broken_by_branch = ("rot90",)
        self.kept_by_branch = ()

    def example_input(self, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> Any:
        from acezoo.data.images import ImageBatch

        x = torch.randn(3, self.channels, self.size, self.size, generator=generator, dtype=dtype)
        return ImageBatch(x=x, y=torch.zeros(3, dtype=torch.long))

    def sample(self, inputs: Any, generator: torch.Generator, rotate: bool = True, reflect: bool | None = None,
               **_: Any) -> ImageElement:
        rot = int(torch.randint(1, 4, (), generator=generator)) if rotate else 0
        if reflect is None:
            reflect = self.group == "D4" and bool(torch.rand((), generator=generator) < 0.5)
        if reflect and self.group != "D4":
            raise ValueError(f"{self.group} has no reflections")
        return ImageElement(rot, bool(reflect))

    @staticmethod
    def transform(x: torch.Tensor, g: ImageElement) -> torch.Tensor:
        if g.flip:
            x = torch.flip(x, dims=(-1,))
        return torch.rot90(x, g.rot, dims=(-2, -1))

    def act_input(self, inputs: Any, g: ImageElement) -> Any:
        return inputs.replace(x=self.transform(inputs.x, g))

    def act_output(self, output: torch.Tensor, g: ImageElement) -> torch.Tensor:
        return output if self.output == "invariant" else self.transform(output, g)


def _image_group(spec: Any = None) -> ImageGroup:
    if spec is None:
        return ImageGroup()
    return ImageGroup(group=spec.group, channels=spec.in_channels, size=9,
                      output="invariant" if spec.head == "classify" else "image")


SYMMETRIES: dict[str, Callable[..., Symmetry]] = {"e3_points": _e3, "image_group": _image_group}


def get_symmetry(name: str, spec: Any = None) -> Symmetry:
    """The symmetry registered under ``name``, specialised to an architecture ``spec`` if given."""
    if name not in SYMMETRIES:
        raise KeyError(f"unknown symmetry {name!r}; known: {', '.join(SYMMETRIES)}")
    return SYMMETRIES[name](spec)


def symmetry_for(spec: Any) -> Symmetry:
    """The symmetry of the registered architecture that ``spec`` (an ``ArchSpec``) describes."""
    from acezoo import registry

    return get_symmetry(registry.get_arch(spec.arch).symmetry, spec)


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
