"""EGNN (Satorras, Hoogeboom & Welling, 2021), velocity variant for N-body, relaxed with ACE.

Inputs (a PyG ``Batch``): ``pos`` (n, 3), ``vel`` (n, 3), ``edge_index``, and ``charge`` (n, 1)
(N-body: edge input ``q_i q_j``) or an invariant ``edge_attr`` (E, edge_dim) (``edge_input``).
Output: predicted positions (n, 3). Symmetry: E(3) (rotations, reflections, translations)
and node permutations.

One layer, with ``d_ij = x_i - x_j`` and the edge input ``a_ij`` (e.g. ``q_i q_j``)::

    m_ij = phi_e(h_i, h_j, |d_ij|^2, a_ij)                     (invariant messages)
    x_i <- x_i + [ mean_j d_ij phi_x(m_ij) + phi_v(h_i) v_i ]  + gamma_x * psi_x(h_i, x_i, v_i)
    h_i <- h_i + [ phi_h(h_i, sum_j m_ij) ]                    + gamma_h * psi_h(h_i, x_i, v_i)

The bracketed updates are the equivariant blocks; ``psi`` are the symmetry-breaking branches
(an MLP over the features and the raw absolute coordinates and velocities). Block names are
``layers.<i>.x`` and ``layers.<i>.h``.
"""
from __future__ import annotations

import torch
from typing import Literal

from pydantic import Field
from torch import nn
from torch_geometric.utils import scatter

from acezoo.config.base import ArchSpec
from acezoo.nn.mlp import MLP
from acezoo.nn.relaxed import Relaxed
from acezoo.registry import register_arch

__all__ = ["EGNNSpec", "EGNN", "EGNNLayer", "build_egnn"]


class EGNNSpec(ArchSpec):
    """EGNN with velocities (N-body variant)."""

    arch: Literal["egnn"] = "egnn"
    hidden: int = Field(64, ge=1, description="Width of node features and messages.")
    layers: int = Field(4, ge=1, description="Number of EGNN layers.")
    branch_hidden: int = Field(64, ge=1, description="Width of the symmetry-breaking branch MLPs.")
    coord_agg: str = Field("mean", pattern="^(mean|sum)$", description="Aggregation of coordinate messages: mean or sum.")
    edge_input: Literal["charge_product", "edge_attr"] = Field(
        "charge_product",
        description="Edge input: `charge_product` (q_i q_j from `batch.charge`, the N-body protocol) or "
        "`edge_attr` (the data set's invariant `batch.edge_attr`, e.g. bone / two-hop for motion capture).",
    )
    edge_dim: int = Field(1, ge=1, description="Width of `batch.edge_attr` when edge_input is `edge_attr`.")
    charge_feature: bool = Field(
        False,
        description="Also feed each node's own charge q_i as an (invariant) input feature. The standard "
        "protocol uses |v| only (charges enter as q_i q_j on edges, which fixes them up to a global sign); "
        "an external field makes the sign matter.",
    )


class CoordUpdate(nn.Module):
    """Equivariant position update ``mean_j d_ij phi_x(m_ij) + phi_v(h_i) v_i``."""

    def __init__(self, hidden: int, agg: str) -> None:
        super().__init__()
        last = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.001)
        self.phi_x = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)
        self.phi_v = MLP([hidden, hidden, 1])
        self.agg = agg

    def forward(self, h, x, v, m, diff, row):  # noqa: ANN001 - shared signature of the block
        trans = diff * self.phi_x(m)
        agg = scatter(trans, row, dim=0, dim_size=x.shape[0], reduce=self.agg)
        return agg + self.phi_v(h) * v


class FeatureUpdate(nn.Module):
    """Invariant feature update ``phi_h(h_i, sum_j m_ij)``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.phi_h = MLP([2 * hidden, hidden, hidden])

    def forward(self, h, x, v, m, diff, row):  # noqa: ANN001
        agg = scatter(m, row, dim=0, dim_size=h.shape[0], reduce="sum")
        return self.phi_h(torch.cat([h, agg], dim=-1))


class AbsoluteBranch(nn.Module):
    """Symmetry-breaking branch: an MLP over ``[h_i, x_i, v_i]`` (raw absolute coordinates)."""

    def __init__(self, hidden: int, branch_hidden: int, out: int) -> None:
        super().__init__()
        self.mlp = MLP([hidden + 6, branch_hidden, out])

    def forward(self, h, x, v, m, diff, row):  # noqa: ANN001
        return self.mlp(torch.cat([h, x, v], dim=-1))


class EGNNLayer(nn.Module):
    """One velocity-EGNN layer with relaxed coordinate (``x``) and feature (``h``) updates."""

    def __init__(self, hidden: int, branch_hidden: int, edge_dim: int = 1, agg: str = "mean") -> None:
        super().__init__()
        self.phi_e = MLP([2 * hidden + 1 + edge_dim, hidden, hidden], last_act=True)
        self.x = Relaxed(CoordUpdate(hidden, agg), AbsoluteBranch(hidden, branch_hidden, 3))
        self.h = Relaxed(FeatureUpdate(hidden), AbsoluteBranch(hidden, branch_hidden, hidden))

    def forward(self, h, x, v, edge_index, edge_attr):  # noqa: ANN001
        row, col = edge_index
        diff = x[row] - x[col]
        radial = (diff * diff).sum(-1, keepdim=True)
        m = self.phi_e(torch.cat([h[row], h[col], radial, edge_attr], dim=-1))
        x_new = x + self.x(h, x, v, m, diff, row)
        h_new = h + self.h(h, x, v, m, diff, row)
        return h_new, x_new


class EGNN(nn.Module):
    """Velocity EGNN: node input ``|v|`` (and optionally ``q_i``), edge input ``q_i q_j``, output positions."""

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 4,
        branch_hidden: int = 64,
        agg: str = "mean",
        charge_feature: bool = False,
        edge_input: str = "charge_product",
        edge_dim: int = 1,
    ) -> None:
        super().__init__()
        self.charge_feature = charge_feature
        self.edge_input = edge_input
        self.embed = nn.Linear(2 if charge_feature else 1, hidden)
        width = 1 if edge_input == "charge_product" else edge_dim
        self.layers = nn.ModuleList(EGNNLayer(hidden, branch_hidden, width, agg) for _ in range(layers))

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        x, v = batch.pos, batch.vel
        row, col = batch.edge_index
        if self.edge_input == "charge_product":
            edge_attr = batch.charge[row] * batch.charge[col]
        else:
            edge_attr = batch.edge_attr
        node = v.norm(dim=-1, keepdim=True)
        h = self.embed(torch.cat([node, batch.charge], dim=-1) if self.charge_feature else node)
        for layer in self.layers:
            h, x = layer(h, x, v, batch.edge_index, edge_attr)
        return x


@register_arch("egnn", spec=EGNNSpec, symmetry="e3_points")
def build_egnn(spec: EGNNSpec) -> EGNN:
    """E(n)-equivariant GNN with velocities (Satorras et al. 2021)."""
    return EGNN(
        spec.hidden, spec.layers, spec.branch_hidden, spec.coord_agg, spec.charge_feature, spec.edge_input, spec.edge_dim
    )
