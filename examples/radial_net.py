"""Registering a new architecture: a one-layer radial point network for N-body.

    x_i' = x_i + sum_j (x_i - x_j) phi(exp(-|x_i - x_j|^2), q_i q_j) + psi(|v_i|) v_i
           + gamma * MLP(x_i, v_i)                    <- the relaxed, symmetry-breaking branch
"""
from typing import Literal

import torch
from torch import nn

import acezoo


class RadialSpec(acezoo.ArchSpec):
    """Spec of the radial network: its YAML keys and their defaults."""

    arch: Literal["radial"] = "radial"
    hidden: int = 32


class RadialUpdate(nn.Module):
    """E(3)-equivariant position update."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.psi = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, batch):
        row, col = batch.edge_index
        diff = batch.pos[row] - batch.pos[col]
        closeness = torch.exp(-(diff**2).sum(-1, keepdim=True))  # invariant, bounded
        edge = torch.cat([closeness, batch.charge[row] * batch.charge[col]], -1)
        move = torch.zeros_like(batch.pos).index_add_(0, row, diff * self.phi(edge))
        return move + self.psi(batch.vel.norm(dim=-1, keepdim=True)) * batch.vel


class AbsoluteMLP(nn.Module):
    """Symmetry-breaking branch: an MLP over raw positions and velocities."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(6, hidden), nn.SiLU(), nn.Linear(hidden, 3))

    def forward(self, batch):
        return self.mlp(torch.cat([batch.pos, batch.vel], -1))


class RadialNet(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.update = acezoo.Relaxed(RadialUpdate(hidden), AbsoluteMLP(hidden))  # gamma "update"

    def forward(self, batch):
        return batch.pos + self.update(batch)


@acezoo.register_arch("radial", spec=RadialSpec, symmetry="e3_points")
def build_radial(spec: RadialSpec) -> RadialNet:
    """One radial message-passing step (README example)."""
    return RadialNet(spec.hidden)
