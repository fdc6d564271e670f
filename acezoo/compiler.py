"""Compile a validated config into a relaxed PyTorch model.

The architecture's builder returns an ``nn.Module`` in which each block to relax is an
:class:`acezoo.Relaxed`. The compiler wraps it in a :class:`RelaxedModel`, names every gamma
by its block's module path (e.g. ``layers.2.h``), resolves the constraint budget per block,
sets the initial gammas, and in ``strict`` mode removes the branches altogether.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from acezoo import registry
from acezoo.config.base import ArchSpec
from acezoo.config.constraints import BlockBudget, ConstraintBudget
from acezoo.config.schema import ZooConfig
from acezoo.errors import ConfigError
from acezoo.nn.relaxed import Relaxed

__all__ = ["RelaxedModel", "compile_model", "strip_relaxed"]


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, leaf, module)


def strip_relaxed(net: nn.Module, keep: set[str] | None = None) -> nn.Module:
    """Replace (in place) every ``Relaxed`` block not named in ``keep`` by its ``eq`` part."""
    keep = keep or set()
    names = [n for n, m in net.named_modules() if isinstance(m, Relaxed) and n not in keep]
    # deepest first is not needed (relaxed blocks do not nest), but is harmless
    for name in sorted(names, key=lambda n: -n.count(".")):
        block = net.get_submodule(name)
        if name == "":
            raise TypeError("the network itself cannot be a Relaxed block; wrap its parts")
        _set_submodule(net, name, block.eq)
    return net


class RelaxedModel(nn.Module):
    """A network whose relaxed blocks each hold one learned scalar gamma.

    ``forward`` is the network's own. Block names are module paths inside the network.
    """

    def __init__(self, net: nn.Module, arch: str = "", plan: dict[str, BlockBudget] | None = None) -> None:
        super().__init__()
        self.net = net
        self.arch = arch
        self.plan: dict[str, BlockBudget] = dict(plan or {})

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.net(*args, **kwargs)

    @property
    def has_forward_both(self) -> bool:
        """Whether the network scores its equivariant-only and full forms in one pass
        (``net.forward_both(*args) -> (equivariant-only output, full output)``)."""
        return callable(getattr(self.net, "forward_both", None))

    def forward_both(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """``(output in equivariant-only mode, output as now)``: the network's own one-pass
        ``forward_both`` where it has one, else two forward passes."""
        if self.has_forward_both:
            return self.net.forward_both(*args, **kwargs)
        with self.equivariant_only():
            eq = self.net(*args, **kwargs)
        return eq, self.net(*args, **kwargs)

    def relaxed_blocks(self) -> dict[str, Relaxed]:
        """The relaxed blocks by name."""
        return {name: m for name, m in self.net.named_modules() if isinstance(m, Relaxed)}

    def named_gammas(self) -> dict[str, nn.Parameter]:
        """Every gamma by block name."""
        return {name: block.gamma for name, block in self.relaxed_blocks().items()}

    def gamma_values(self) -> dict[str, float]:
        """Current gamma values by block name."""
        return {name: float(g.detach()) for name, g in self.named_gammas().items()}

    def gamma_parameters(self) -> list[nn.Parameter]:
        return list(self.named_gammas().values())

    def weight_parameters(self) -> list[nn.Parameter]:
        """All parameters except the gammas."""
        gammas = {id(g) for g in self.gamma_parameters()}
        return [p for p in self.parameters() if id(p) not in gammas]

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of the full model and of its pruned form (without copying the model)."""
        full = sum(p.numel() for p in self.parameters())
        branches = sum(p.numel() for b in self.relaxed_blocks().values() for p in b.neq.parameters())
        return {"full": full, "pruned": full - branches - len(self.relaxed_blocks())}

    @contextmanager
    def equivariant_only(self, enabled: bool = True) -> Iterator["RelaxedModel"]:
        """Context in which every gamma is treated as 0 (branches are not evaluated)."""
        blocks = self.relaxed_blocks().values()
        before = [b.equivariant_only for b in blocks]
        for b in blocks:
            b.equivariant_only = enabled
        try:
            yield self
        finally:
            for b, flag in zip(blocks, before):
                b.equivariant_only = flag

    def prune(self) -> nn.Module:
        """A copy of the network with every symmetry-breaking branch removed.

        Its outputs equal those of :meth:`equivariant_only` mode (it runs the same code).
        """
        return strip_relaxed(copy.deepcopy(self.net))


def compile_model(config: ZooConfig | ArchSpec, constraints: ConstraintBudget | None = None) -> RelaxedModel:
    """Build the relaxed model described by ``config`` (a ``ZooConfig`` or a bare arch spec).

    With a bare spec, ``constraints`` defaults to an all-``equality`` budget.
    """
    if isinstance(config, ZooConfig):
        spec, budget = config.model, config.constraints
    else:
        spec, budget = config, constraints or ConstraintBudget()
    entry = registry.get_arch(spec.arch)
    net = entry.builder(spec)
    if not isinstance(net, nn.Module):
        raise TypeError(f"builder of {spec.arch!r} returned {type(net).__name__}, expected an nn.Module")
    names = [n for n, m in net.named_modules() if isinstance(m, Relaxed)]
    try:
        plan = budget.resolve(names)
    except KeyError as exc:
        pattern = exc.args[0]
        raise ConfigError(
            [(f"constraints.blocks.{pattern}", f"matches no relaxed block; blocks are: {', '.join(names) or 'none'}")]
        ) from None
    strict = {n for n, b in plan.items() if b.mode == "strict"}
    strip_relaxed(net, keep=set(names) - strict)
    plan = {n: b for n, b in plan.items() if n not in strict}
    model = RelaxedModel(net, arch=spec.arch, plan=plan)
    with torch.no_grad():
        for name, gamma in model.named_gammas().items():
            gamma.fill_(plan[name].init_gamma)
            if plan[name].mode == "schedule":
                gamma.requires_grad_(False)
    return model
