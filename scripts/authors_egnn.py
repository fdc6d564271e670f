"""A minimal re-implementation of the EGNN authors' N-body model (vgsatorras/egnn).

``E_GCL_vel`` / ``EGNN_vel`` of ``models/gcl.py`` and ``n_body_system/model.py`` as
``main_nbody.py`` builds them (``recurrent=True``, no attention, no tanh, no norm_diff, SiLU):

.. math::

    m_{ij} = \\phi_e(h_i, h_j, |x_i - x_j|^2, a_{ij}),\\qquad
    a_{ij} = [q_i q_j, |x^0_i - x^0_j|^2]

    x_i \\leftarrow x_i + \\operatorname{mean}_j \\operatorname{clamp}_{\\pm 100}\\big((x_i - x_j)\\,
    \\phi_x(m_{ij})\\big) + \\phi_v(h_i)\\, v_i,\\qquad
    h_i \\leftarrow h_i + \\phi_h(h_i, \\textstyle\\sum_j m_{ij})

with node input ``|v_i|``. Written from the paper and the public code's structure; used by
``bench_epoch.py`` (what an unrelaxed EGNN epoch costs in plain PyTorch) and by
``study_reference_egnn.py`` (what the authors' model and training loop score on our data).
Not part of the ``acezoo`` package: ``acezoo.archs.egnn`` is the EGNN users train.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["AuthorsGCLVel", "AuthorsEGNNVel"]


def _segment_sum(data: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    out = data.new_full((n, data.size(1)), 0)
    return out.scatter_add_(0, ids.unsqueeze(-1).expand(-1, data.size(1)), data)


def _segment_mean(data: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    idx = ids.unsqueeze(-1).expand(-1, data.size(1))
    out = data.new_full((n, data.size(1)), 0).scatter_add_(0, idx, data)
    count = data.new_full((n, data.size(1)), 0).scatter_add_(0, idx, torch.ones_like(data))
    return out / count.clamp(min=1)


class AuthorsGCLVel(nn.Module):
    """``E_GCL_vel`` with ``recurrent=True``, no attention, no tanh, no norm_diff, SiLU."""

    def __init__(self, hidden: int, edges_in: int) -> None:
        super().__init__()
        act = nn.SiLU()
        self.edge_mlp = nn.Sequential(nn.Linear(2 * hidden + 1 + edges_in, hidden), act, nn.Linear(hidden, hidden), act)
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), act, nn.Linear(hidden, hidden))
        last = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.001)
        self.coord_mlp = nn.Sequential(nn.Linear(hidden, hidden), act, last)
        self.coord_mlp_vel = nn.Sequential(nn.Linear(hidden, hidden), act, nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, coord: torch.Tensor, vel: torch.Tensor,
                edge_attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        row, col = edge_index
        coord_diff = coord[row] - coord[col]
        radial = torch.sum(coord_diff ** 2, 1).unsqueeze(1)
        edge_feat = self.edge_mlp(torch.cat([h[row], h[col], radial, edge_attr], dim=1))
        trans = torch.clamp(coord_diff * self.coord_mlp(edge_feat), min=-100, max=100)
        coord = coord + _segment_mean(trans, row, coord.size(0))
        coord = coord + self.coord_mlp_vel(h) * vel
        agg = _segment_sum(edge_feat, row, h.size(0))
        h = h + self.node_mlp(torch.cat([h, agg], dim=1))
        return h, coord


class AuthorsEGNNVel(nn.Module):
    """``EGNN_vel(in_node_nf=1, in_edge_nf=2)`` as in the authors' ``main_nbody.py``: node input
    ``|v|``, edge input ``[q_i q_j, |x_i - x_j|^2 of the input positions]``. ``forward`` takes an
    acezoo N-body batch (``pos``, ``vel``, ``charge``, ``edge_index``) and returns positions."""

    def __init__(self, hidden: int = 64, layers: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Linear(1, hidden)
        self.layers = nn.ModuleList(AuthorsGCLVel(hidden, 2) for _ in range(layers))

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        row, col = batch.edge_index
        loc, vel = batch.pos, batch.vel
        loc_dist = torch.sum((loc[row] - loc[col]) ** 2, 1).unsqueeze(1)
        edge_attr = torch.cat([batch.charge[row] * batch.charge[col], loc_dist], 1).detach()
        h, x = self.embedding(vel.norm(dim=-1, keepdim=True)), loc
        for layer in self.layers:
            h, x = layer(h, batch.edge_index, x, vel, edge_attr)
        return x
