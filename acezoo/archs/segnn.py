"""SEGNN (Brandstetter, Hesselink, van der Pol, Bekkers & Welling, ICLR 2022), relaxed with ACE.

Steerable E(3)-equivariant message passing on features of degree <= 1, ``h_i = (s_i, v_i)``
with ``n`` scalars (0e) and ``n`` vectors (1o) per node (:mod:`acezoo.nn.o3_lmax1`). Geometry
enters through steerable attributes, the spherical harmonics ``Y(r) = (Y^0, Y^1(r/|r|))``:

- edge attribute ``e_ij = Y(x_i - x_j)``;
- node attribute ``a_i = mean_j e_ij + Y(v_i)`` (the relative positions and the velocity).

Inputs (dynamics, the N-body protocol): ``pos`` (n, 3), ``vel`` (n, 3), ``edge_index`` (row 0
the receiver i, row 1 the sender j) and ``charge`` (n, 1) or ``edge_attr``; the node input is
``(|v_i|, extra node features) (0e)`` and ``(x_i - c_g, v_i) (1o)`` with ``c_g`` the centroid of
node i's graph. (The ACE authors' N-body loader feeds the absolute position, which breaks
translation equivariance; the published SEGNN loader subtracts a mean over the coordinate axis,
which breaks rotations. The centroid keeps the model E(3)-equivariant.) One layer, with the
gated tensor products ``G`` and the plain tensor product ``T`` (``(x)``: with the attribute)::

    m_ij = G_2( G_1( [h_i, h_j, |x_i - x_j|, q_i q_j] (x) e_ij ) (x) e_ij )
    u_i  = [h_i, sum_j m_ij]
    h_i <- h_i + T( G_3(u_i (x) a_i) + gamma_1 psi_1(u_i, x_i) (x) a_i ) + gamma_2 psi_2(., x_i)

where ``psi`` are the symmetry-breaking branches (the ACE authors' form: an MLP over the
flattened irreps, here also reading the node's raw absolute position so that the branch breaks
translations as well as rotations). The two relaxed sub-blocks of each layer's node update are
``layers.<i>.update1`` and ``layers.<i>.update2``. Read-out: ``x_i + T(G(h_i (x) a_i) (x) a_i)``, one
vector per node: a displacement added to the input position.

Symmetry: E(3) (rotations, reflections, translations) and node permutations.

Implementation: the first message tensor product is linear in ``[h_i, h_j, edge scalars]``, so
its node parts are evaluated once per node and brought to the edges (a gather for the senders;
for the receivers a broadcast on a regular graph, else a gather) instead of once per edge. An
edge's ``Y^0`` is the same number on every edge, so the messages fold it (and the first
message's bias) into their weights instead of multiplying edge tensors by it. The same parameters
and maths as the ``e3nn`` kernel, which runs e3nn's tensor product on the concatenated edge input.
"""
from __future__ import annotations

import torch
from torch import nn

from acezoo.archs.egnn import EdgeGraph
from acezoo.archs.specs import SEGNNSpec
from acezoo.nn.bounded import branch_mlp
from acezoo.nn.node_features import read_node_features
from acezoo.nn.o3_lmax1 import (Feature, GatedTensorProduct, Kernel, TensorProduct, cat_features, dot_b, sh_lmax1,
                                unflatten)
from acezoo.nn.o3_lmax1 import INV_SQRT3, Y0
from acezoo.nn.relaxed import Relaxed
from acezoo.nn.scatter import scatter

__all__ = ["SEGNN", "SEGNNLayer", "SEGNNSpec", "EdgeMessage", "build_segnn"]

Attr = tuple[torch.Tensor | float, torch.Tensor]  # (Y^0, Y^1): Y^0 a number where it is the same on every row


class EdgeMessage(nn.Module):
    """``G([h_i, h_j, scalars_ij] (x) e_ij)``: the first, gated message tensor product.

    ``fused``: the parts of the (linear) tensor product that read ``h_i`` and ``h_j`` are
    computed per node and gathered; ``e3nn``: the tensor product of the concatenated edge input.
    """

    def __init__(self, c: int, edge_scalars: int, kernel: Kernel) -> None:
        super().__init__()
        self.c = c
        self.g = GatedTensorProduct(2 * c + edge_scalars, 2 * c, c, c, attr=True, kernel=kernel)

    def forward(self, h: Feature, scalars: torch.Tensor, e: Attr, graph: EdgeGraph) -> Feature:
        tp = self.g.tp
        if tp.kernel == "e3nn":
            x = cat_features((h[0].index_select(0, graph.row), h[1].index_select(0, graph.row)),
                             (h[0].index_select(0, graph.col), h[1].index_select(0, graph.col)))
            x = (torch.cat([x[0], scalars], dim=-1), x[1])
            return self.g(x, e)
        c, (s, v) = self.c, h
        n = s.shape[0]
        out_s, out_v = tp.out_s, tp.out_v
        a, b = e
        # a number (Y^0, the same on every edge): folded into w_ss and w_vv, the bias into the receivers' part
        const = isinstance(a, (int, float))
        w_ss, w_vv = (a * tp.w_ss, a * tp.w_vv) if const else (tp.w_ss, tp.w_vv)
        parts = []
        for k in range(2):  # receiver (rows 0..c-1 of the weights), then sender (rows c..2c-1)
            rows = slice(k * c, (k + 1) * c)
            parts.append(torch.cat([
                torch.addmm(tp.bias, s, w_ss[rows]) if const and k == 0 else s @ w_ss[rows],  # (n, out_s)
                (v @ tp.w_vs[rows]).reshape(n, -1),  # (n, 3 out_s)
                s @ tp.w_sv[rows],  # (n, out_v)
                (v @ w_vv[rows]).reshape(n, -1),  # (n, 3 out_v)
            ], dim=-1))
        # receiver part + sender part per edge (a broadcast, not a gather, for the receivers of a regular graph)
        node = graph.flat(graph.add_receivers(graph.senders(parts[1]), parts[0]))
        m = node.shape[0]
        ss, vs, sv, vv = torch.split(node, [out_s, 3 * out_s, out_v, 3 * out_v], dim=-1)
        ss = torch.addmm(ss, scalars, w_ss[2 * c:])
        sv = torch.addmm(sv, scalars, tp.w_sv[2 * c:])
        vs = dot_b(vs.view(m, 3, out_s), INV_SQRT3 * b)
        if const:
            s_out = ss + vs
            v_out = torch.addcmul(vv.view(m, 3, out_v), sv.unsqueeze(1), b.unsqueeze(2))
        else:
            s_out = torch.addcmul(tp.bias, a, ss) + vs
            v_out = torch.addcmul(a.unsqueeze(2) * vv.view(m, 3, out_v), sv.unsqueeze(1), b.unsqueeze(2))
        return self.g.gate((s_out, v_out))


class NodeTensorProduct(nn.Module):
    """The equivariant part of a relaxed node-update sub-block: ``tp(x (x) a_i)`` (ignores ``pos``)."""

    def __init__(self, tp: nn.Module) -> None:
        super().__init__()
        self.tp = tp

    def forward(self, x: Feature, attr: Attr, pos: torch.Tensor) -> Feature:  # noqa: ARG002
        return self.tp(x, attr)


class FlatBranch(nn.Module):
    """A symmetry-breaking branch: an MLP over ``[flatten(x), pos]`` (the flattened irreps and the
    raw absolute position), its output read back as ``(s, v)``."""

    def __init__(self, mlp: nn.Module, c0: int, c1: int) -> None:
        super().__init__()
        self.mlp, self.c0, self.c1 = mlp, c0, c1

    def forward(self, x: Feature, attr: Attr, pos: torch.Tensor) -> Feature:  # noqa: ARG002
        s, v = x  # one concatenation: [flatten(x), pos]
        return unflatten(self.mlp(torch.cat([s, v.flatten(1), pos], dim=-1)), self.c0, self.c1)


def authors_mlp(widths: list[int]) -> nn.Sequential:
    """``Linear -> GELU -> ... -> Linear`` (the ACE authors' SEGNN branch)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(nn.GELU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


def _branch(kind: str, d_in: int, d_out: int, branch_hidden: int, c: int) -> FlatBranch:
    """A branch from flattened features of width ``d_in`` (and the position) to width ``d_out``
    (``authors``: ``d_in -> 2 d_out -> d_out -> d_out``, GELU)."""
    if kind == "authors":
        mlp = authors_mlp([d_in + 3, 2 * d_out, d_out, d_out])
    else:
        mlp = branch_mlp(kind, [d_in + 3, branch_hidden, d_out])
    return FlatBranch(mlp, c, c)


class SEGNNLayer(nn.Module):
    """One SEGNN layer: two gated message tensor products, summed over each receiver's edges,
    and a residual node update of two relaxed sub-blocks (``update1``, ``update2``)."""

    def __init__(self, c: int, edge_scalars: int, branch: str, branch_hidden: int, kernel: Kernel) -> None:
        super().__init__()
        d = 4 * c  # width of the flattened features n x 0e + n x 1o
        self.message1 = EdgeMessage(c, edge_scalars, kernel)
        self.message2 = GatedTensorProduct(c, c, c, c, attr=True, kernel=kernel)
        self.update1 = Relaxed(NodeTensorProduct(GatedTensorProduct(2 * c, 2 * c, c, c, attr=True, kernel=kernel)),
                               _branch(branch, 2 * d, d, branch_hidden, c))
        self.update2 = Relaxed(NodeTensorProduct(TensorProduct(c, c, c, c, attr=True, kernel=kernel)),
                               _branch(branch, d, d, branch_hidden, c))

    def forward(self, h: Feature, scalars: torch.Tensor, e: Attr, a: Attr, graph: EdgeGraph,
                pos: torch.Tensor) -> Feature:
        m = self.message2(self.message1(h, scalars, e, graph), e)
        agg = (graph.sum(graph.edges(m[0])), graph.sum(graph.edges(m[1])))
        u = self.update2(self.update1(cat_features(h, agg), a, pos), a, pos)
        return h[0] + u[0], h[1] + u[1]


class SEGNN(nn.Module):
    """SEGNN over ``spec``: a position per node (dynamics)."""

    def __init__(self, spec: SEGNNSpec) -> None:
        super().__init__()
        self.spec = spec
        c = spec.multiplicity
        edge_scalars = 1 + {"charge_product": 1, "edge_attr": spec.edge_dim, "none": 0}[spec.edge_input]
        in_s = 1 + len(spec.node_features)
        self.embed = TensorProduct(in_s, 2, c, c, attr=True, kernel=spec.kernel)
        self.layers = nn.ModuleList(SEGNNLayer(c, edge_scalars, spec.branch, spec.branch_hidden, spec.kernel)
                                    for _ in range(spec.layers))
        self.head1 = GatedTensorProduct(c, c, c, c, attr=True, kernel=spec.kernel)
        self.head2 = TensorProduct(c, c, 0, 1, attr=True, kernel=spec.kernel)

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        pos, vel = batch.pos, batch.vel
        n = pos.shape[0]
        graph = EdgeGraph(batch.edge_index, n)
        rel = graph.flat(graph.differences(pos))  # x_i - x_j per edge
        e = sh_lmax1(rel)
        e_msg = (Y0, e[1])  # Y^0 is the same number on every edge: the messages fold it into their weights
        a0, a1 = sh_lmax1(vel)
        a = (graph.mean(graph.edges(e[0])) + a0, graph.mean(graph.edges(e[1])) + a1)
        scalars = self._edge_scalars(batch, rel, graph)
        h = self.embed(self._node_inputs(batch), a)
        for layer in self.layers:
            h = layer(h, scalars, e_msg, a, graph, pos)
        return pos + self.head2(self.head1(h, a), a)[1][:, :, 0]

    def _node_inputs(self, batch) -> Feature:  # noqa: ANN001
        """``(|v|, node features)`` (0e) and ``(x - centroid of the graph, v)`` (1o)."""
        pos, vel = batch.pos, batch.vel
        nodes = getattr(batch, "batch", None)
        if nodes is None:
            centre = pos.mean(dim=0, keepdim=True).expand_as(pos)
        else:
            centre = scatter(pos, nodes, reduce="mean").index_select(0, nodes)
        s = torch.cat([vel.norm(dim=-1, keepdim=True), *read_node_features(batch, self.spec.node_features, pos.dtype)],
                      dim=-1)
        return s, torch.stack([pos - centre, vel], dim=-1)

    def _edge_scalars(self, batch, rel: torch.Tensor, graph: EdgeGraph) -> torch.Tensor:  # noqa: ANN001
        """``[|x_i - x_j|, q_i q_j or edge_attr]`` per edge, (E, k)."""
        parts = [rel.norm(dim=-1, keepdim=True)]
        if self.spec.edge_input == "charge_product":
            charge = getattr(batch, "charge", None)
            if not isinstance(charge, torch.Tensor) or charge.shape[0] != batch.pos.shape[0]:
                raise ValueError("SEGNN with edge_input `charge_product` needs `charge`, one value per node "
                                 f"({batch.pos.shape[0]}, 1); got {None if charge is None else tuple(charge.shape)}")
            charge = charge.to(rel.dtype).reshape(-1, 1)
            parts.append(charge.index_select(0, graph.row) * charge.index_select(0, graph.col))
        elif self.spec.edge_input == "edge_attr":
            attr = getattr(batch, "edge_attr", None)
            if not isinstance(attr, torch.Tensor) or attr.shape[0] != rel.shape[0]:
                raise ValueError(f"SEGNN with edge_input `edge_attr` needs `edge_attr`, ({rel.shape[0]}, "
                                 f"{self.spec.edge_dim}) for {rel.shape[0]} edges; got "
                                 f"{None if attr is None else tuple(attr.shape)}")
            parts.append(attr.to(rel.dtype).reshape(rel.shape[0], -1))
        return torch.cat(parts, dim=-1)


def build_segnn(spec: SEGNNSpec) -> SEGNN:
    """Steerable E(3)-equivariant GNN (Brandstetter et al. 2022) on degree <= 1 features."""
    return SEGNN(spec)
