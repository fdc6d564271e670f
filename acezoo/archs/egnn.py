"""EGNN (Satorras, Hoogeboom & Welling, 2021), relaxed with ACE.

Two input/output modes:

- dynamics (``node_input: velocity``, ``output: position``; N-body, motion capture): inputs
  ``pos`` (n, 3), ``vel`` (n, 3), ``edge_index`` and ``charge`` (n, 1) (edge input
  ``q_i q_j``) or an invariant ``edge_attr`` (E, edge_dim); output: a position per node.
- molecules (``node_input: atoms``, ``output: graph``; QM9): inputs ``pos``, the one-hot atom
  types ``onehot`` (n, atom_types) and ``edge_index``; output: ``out_channels`` invariants per
  graph, ``graph_mlp( pool_i node_mlp(h_i) )`` (the EGNN paper's QM9 read-out).

Symmetry: E(3) (rotations, reflections, translations) and node permutations.

One layer, with ``d_ij = x_i - x_j`` and the edge input ``a_ij`` (e.g. ``q_i q_j``)::

    m_ij = phi_e(h_i, h_j, |d_ij|^2, a_ij)                     (invariant messages)
    x_i <- x_i + [ mean_j d_ij phi_x(m_ij) + phi_v(h_i) v_i ]  + gamma_x * psi_x(h_i, x_i, v_i)
    h_i <- h_i + [ phi_h(h_i, sum_j m_ij) ]                    + gamma_h * psi_h(h_i, x_i, v_i)

The bracketed updates are the equivariant blocks; ``psi`` are the symmetry-breaking branches
(an MLP over the features and the raw absolute coordinates and velocities; velocities are zero
for molecules). Block names are ``layers.<i>.x`` and ``layers.<i>.h``. With ``edge_gate`` the
messages are scaled by an inferred edge weight, ``m_ij <- sigmoid(w . m_ij) m_ij``; with
``coord_updates: false`` (the paper's QM9 set-up) positions stay fixed and there are no
``layers.<i>.x`` blocks.
"""
from __future__ import annotations

import torch
from typing import Literal

from pydantic import Field, model_validator
from torch import nn
from torch_geometric.utils import scatter

from acezoo.config.base import ArchSpec
from acezoo.nn.bounded import BRANCH_DESCRIPTION, BranchKind, branch_mlp
from acezoo.nn.mlp import MLP
from acezoo.nn.relaxed import Relaxed
from acezoo.registry import register_arch

__all__ = ["EGNNSpec", "EGNN", "EGNNLayer", "build_egnn"]


class EGNNSpec(ArchSpec):
    """EGNN: positions per node from velocities (dynamics), or invariants per molecule (atoms)."""

    arch: Literal["egnn"] = "egnn"
    hidden: int = Field(64, ge=1, description="Width of node features and messages.")
    layers: int = Field(4, ge=1, description="Number of EGNN layers.")
    branch_hidden: int = Field(64, ge=1, description="Width of the symmetry-breaking branch MLPs.")
    branch: BranchKind = Field("plain", description=BRANCH_DESCRIPTION)
    coord_agg: str = Field("mean", pattern="^(mean|sum)$", description="Aggregation of coordinate messages: mean or sum.")
    edge_input: Literal["charge_product", "edge_attr", "none"] = Field(
        "charge_product",
        description="Edge input: `charge_product` (q_i q_j from `batch.charge`, the N-body protocol), "
        "`edge_attr` (the data set's invariant `batch.edge_attr`, e.g. bone / two-hop for motion capture) "
        "or `none`.",
    )
    edge_dim: int = Field(1, ge=1, description="Width of `batch.edge_attr` when edge_input is `edge_attr`.")
    charge_feature: bool = Field(
        False,
        description="Also feed each node's own charge q_i as an (invariant) input feature. The standard "
        "protocol uses |v| only (charges enter as q_i q_j on edges, which fixes them up to a global sign); "
        "an external field makes the sign matter.",
    )
    node_input: Literal["velocity", "atoms"] = Field(
        "velocity",
        description="`velocity`: |v_i| from `batch.vel` (dynamics); `atoms`: the one-hot atom types "
        "`batch.onehot` (molecules, e.g. QM9).",
    )
    atom_types: int = Field(5, ge=1, description="Width of `batch.onehot` when node_input is `atoms`.")
    output: Literal["position", "graph"] = Field(
        "position",
        description="`position`: the updated position of each node; `graph`: `out_channels` invariants per "
        "graph, graph_mlp(pool over nodes of node_mlp(h_i)) (e.g. a molecular property).",
    )
    out_channels: int = Field(1, ge=1, description="Invariants per graph of `output: graph`.")
    pool: Literal["sum", "mean"] = Field("sum", description="Pooling over the nodes of a graph for `output: graph`.")
    coord_updates: bool = Field(
        True, description="Update positions layer by layer (needed for `output: position`; the EGNN paper's "
        "QM9 model keeps them fixed)."
    )
    edge_gate: bool = Field(False, description="Scale each message by an inferred edge weight sigmoid(w . m_ij).")

    @model_validator(mode="after")
    def _check(self) -> "EGNNSpec":
        if self.output == "position" and not self.coord_updates:
            raise ValueError("output `position` needs coord_updates: true (the positions are the output)")
        if self.node_input == "atoms" and (self.charge_feature or self.edge_input == "charge_product"):
            raise ValueError("node_input `atoms` has no charges: set edge_input to `none` or `edge_attr` and "
                             "charge_feature to false")
        return self


class CoordUpdate(nn.Module):
    """Equivariant position update ``mean_j d_ij phi_x(m_ij) + phi_v(h_i) v_i``."""

    def __init__(self, hidden: int, agg: str, velocity: bool = True) -> None:
        super().__init__()
        last = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.001)
        self.phi_x = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)
        self.phi_v = MLP([hidden, hidden, 1]) if velocity else None
        self.agg = agg

    def forward(self, h, x, v, m, diff, row):  # noqa: ANN001 - shared signature of the block
        trans = diff * self.phi_x(m)
        agg = scatter(trans, row, dim=0, dim_size=x.shape[0], reduce=self.agg)
        return agg if self.phi_v is None else agg + self.phi_v(h) * v


class FeatureUpdate(nn.Module):
    """Invariant feature update ``phi_h(h_i, sum_j m_ij)``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.phi_h = MLP([2 * hidden, hidden, hidden])

    def forward(self, h, x, v, m, diff, row):  # noqa: ANN001
        agg = scatter(m, row, dim=0, dim_size=h.shape[0], reduce="sum")
        return self.phi_h(torch.cat([h, agg], dim=-1))


class AbsoluteBranch(nn.Module):
    """Symmetry-breaking branch: an MLP (plain or bounded) over ``[h_i, x_i, v_i]`` (raw absolute
    coordinates)."""

    def __init__(self, hidden: int, branch_hidden: int, out: int, kind: str = "plain") -> None:
        super().__init__()
        self.mlp = branch_mlp(kind, [hidden + 6, branch_hidden, out])

    def forward(self, h, x, v, m, diff, row):  # noqa: ANN001
        return self.mlp(torch.cat([h, x, v], dim=-1))


class EGNNLayer(nn.Module):
    """One EGNN layer with relaxed coordinate (``x``, optional) and feature (``h``) updates."""

    def __init__(
        self,
        hidden: int,
        branch_hidden: int,
        edge_dim: int = 1,
        agg: str = "mean",
        velocity: bool = True,
        coord_updates: bool = True,
        edge_gate: bool = False,
        branch: str = "plain",
    ) -> None:
        super().__init__()
        self.phi_e = MLP([2 * hidden + 1 + edge_dim, hidden, hidden], last_act=True)
        self.gate = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid()) if edge_gate else None
        self.x = (Relaxed(CoordUpdate(hidden, agg, velocity), AbsoluteBranch(hidden, branch_hidden, 3, branch))
                  if coord_updates else None)
        self.h = Relaxed(FeatureUpdate(hidden), AbsoluteBranch(hidden, branch_hidden, hidden, branch))

    def forward(self, h, x, v, edge_index, edge_attr):  # noqa: ANN001
        row, col = edge_index
        diff = x[row] - x[col]
        radial = (diff * diff).sum(-1, keepdim=True)
        parts = [h[row], h[col], radial] + ([edge_attr] if edge_attr is not None else [])
        m = self.phi_e(torch.cat(parts, dim=-1))
        if self.gate is not None:
            m = m * self.gate(m)
        x_new = x if self.x is None else x + self.x(h, x, v, m, diff, row)
        h_new = h + self.h(h, x, v, m, diff, row)
        return h_new, x_new


class GraphReadout(nn.Module):
    """Invariants per graph: ``graph_mlp( pool_{i in graph} node_mlp(h_i) )``."""

    def __init__(self, hidden: int, out: int, pool: str) -> None:
        super().__init__()
        self.node_mlp = MLP([hidden, hidden, hidden])
        self.graph_mlp = MLP([hidden, hidden, out])
        self.pool = pool

    def forward(self, h: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        size = int(nodes.max()) + 1 if nodes.numel() else 0
        return self.graph_mlp(scatter(self.node_mlp(h), nodes, dim=0, dim_size=size, reduce=self.pool))


class EGNN(nn.Module):
    """EGNN over ``spec``: positions per node (dynamics) or invariants per graph (molecules)."""

    def __init__(self, spec: EGNNSpec) -> None:
        super().__init__()
        self.spec = spec
        if spec.node_input == "atoms":
            width_in = spec.atom_types
        else:
            width_in = 2 if spec.charge_feature else 1
        self.embed = nn.Linear(width_in, spec.hidden)
        edge_width = {"charge_product": 1, "edge_attr": spec.edge_dim, "none": 0}[spec.edge_input]
        self.layers = nn.ModuleList(
            EGNNLayer(spec.hidden, spec.branch_hidden, edge_width, spec.coord_agg, spec.node_input == "velocity",
                      spec.coord_updates, spec.edge_gate, spec.branch)
            for _ in range(spec.layers)
        )
        self.readout = GraphReadout(spec.hidden, spec.out_channels, spec.pool) if spec.output == "graph" else None

    def node_inputs(self, batch) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        """Invariant node inputs and the velocities (zeros for molecules; the branch reads them)."""
        if self.spec.node_input == "atoms":
            return batch.onehot.to(batch.pos.dtype), torch.zeros_like(batch.pos)
        v = batch.vel
        node = v.norm(dim=-1, keepdim=True)
        return (torch.cat([node, batch.charge.to(v.dtype)], dim=-1) if self.spec.charge_feature else node), v

    def edge_inputs(self, batch) -> torch.Tensor | None:  # noqa: ANN001
        if self.spec.edge_input == "charge_product":
            row, col = batch.edge_index
            return batch.charge[row] * batch.charge[col]
        if self.spec.edge_input == "edge_attr":
            return batch.edge_attr
        return None

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        node, v = self.node_inputs(batch)
        edge_attr = self.edge_inputs(batch)
        h, x = self.embed(node), batch.pos
        for layer in self.layers:
            h, x = layer(h, x, v, batch.edge_index, edge_attr)
        if self.readout is None:
            return x
        nodes = batch.batch if getattr(batch, "batch", None) is not None else torch.zeros(
            h.shape[0], dtype=torch.long, device=h.device)
        return self.readout(h, nodes)


@register_arch(
    "egnn",
    spec=EGNNSpec,
    symmetry="e3_points",
    examples={
        "charge-feature": dict(charge_feature=True),
        "molecule": dict(node_input="atoms", edge_input="none", output="graph", coord_updates=False, edge_gate=True),
        "molecule-coords": dict(node_input="atoms", edge_input="none", output="graph", pool="mean", out_channels=2),
        "bounded-branch": dict(branch="bounded"),
    },
)
def build_egnn(spec: EGNNSpec) -> EGNN:
    """E(n)-equivariant GNN (Satorras et al. 2021): dynamics (velocities) or molecules (atoms)."""
    return EGNN(spec)
