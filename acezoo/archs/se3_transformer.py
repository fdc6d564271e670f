"""SE(3)-Transformer (Fuchs, Worrall, Fischer & Welling, NeurIPS 2020) on e3nn, relaxed with ACE.

Node features are irreps ``h_i`` (``c_0 x 0e + c_1 x 1o + ... + c_L x Le``). One layer, for the
edges ``j -> i`` of the graph with ``r_ij = x_j - x_i``:

    k_ij, v_ij = W_kv [ h_j (x)_{w(|r_ij|, a_ij)} Y(r_ij) ]   (tensor product with spherical
                                                             harmonics; per-path weights w from
                                                             a radial MLP of the distance and
                                                             the edge input a_ij)
    q_i        = W_q h_i                                     (equivariant linear map)
    alpha_ij^k = softmax_j ( <q_i^k, k_ij^k> / sqrt(d) )     (invariant dot product, head k)
    attn_i     = W_o  sum_j alpha_ij^k v_ij^k                 (heads concatenated)

    h_i <- h_i + [ attn(LN h)_i + FFN(LN(h + attn))_i ]  +  gamma * psi(h_i, x_i, v_i)

``LN`` is an equivariant layer norm and ``FFN`` an e3nn gate (SiLU on scalars, sigmoid
gates on l > 0). The bracket is the equivariant block; ``psi`` is the symmetry-breaking
branch, an MLP over the flattened irreps features and the raw coordinates and velocities.
Block names are ``layers.<i>``. Inputs are those of the EGNN (``pos``, ``vel``, ``charge`` or
``edge_attr``); node inputs are ``|v_i|`` (and ``q_i``) as ``0e`` and ``v_i`` as ``1o``. The
output is a point per node (``x_i + W h_i`` through a ``1o`` head), a vector or invariants;
for molecules the inputs are one-hot atom types (``0e``) and the output is an invariant per
graph, or a symmetric 3x3 tensor per graph (``output: tensor``): the ``0e + 2e`` head summed
over the graph's atoms, mapped to Cartesian form by the orthonormal change of basis ``Q`` of
symmetric 3x3 tensors, ``A = sum_k c_k Q_k``, so that ``A -> R A R^T`` when the molecule
rotates by ``R`` (e.g. a polarizability tensor).
"""
from __future__ import annotations

import torch
from e3nn import io, o3
from e3nn.math import soft_one_hot_linspace
from e3nn.nn import FullyConnectedNet, Gate
from torch import nn
from torch_geometric.utils import scatter, softmax

from acezoo.archs.specs import SE3TransformerSpec
from acezoo.data.graphs import batch_fully_connected_edge_index, knn_edge_index, radius_edge_index
from acezoo.nn.irreps import EquivariantLayerNorm, degree_irreps, merge_heads, split_heads
from acezoo.nn.bounded import branch_mlp
from acezoo.nn.node_features import read_node_features
from acezoo.nn.relaxed import Relaxed, equivariant_part, outputs_both

__all__ = ["SE3TransformerSpec", "SE3Transformer", "SE3TLayer", "EdgeGeometry", "build_se3_transformer"]


class EdgeGeometry(nn.Module):
    """Edges of a batch and their invariant / spherical-harmonic descriptors."""

    def __init__(self, spec: SE3TransformerSpec) -> None:
        super().__init__()
        self.spec = spec
        self.irreps_sh = o3.Irreps.spherical_harmonics(spec.max_degree)
        self.sh = o3.SphericalHarmonics(self.irreps_sh, normalize=True, normalization="component")

    def edges(self, batch) -> torch.Tensor:  # noqa: ANN001
        kind = self.spec.graph
        if kind == "data":
            return batch.edge_index
        nodes = batch.batch if getattr(batch, "batch", None) is not None else batch.pos.new_zeros(
            batch.pos.shape[0], dtype=torch.long)
        if kind == "fully_connected":
            return batch_fully_connected_edge_index(nodes)
        if kind == "radius":
            return radius_edge_index(batch.pos, nodes, self.spec.radius)
        return knn_edge_index(batch.pos, nodes, self.spec.k)

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # noqa: ANN001
        """``edge_index``, ``Y(r_ij)`` (E, sh) and the radial-MLP input (E, basis + edge inputs)."""
        edge_index = self.edges(batch)
        dst, src = edge_index
        rel = batch.pos[src] - batch.pos[dst]
        length = rel.norm(dim=-1)
        spec = self.spec
        radial = soft_one_hot_linspace(length, 0.0, spec.max_radius, spec.radial_basis, "gaussian", False)
        parts = [radial]
        if spec.edge_input == "charge_product":
            parts.append(batch.charge[dst] * batch.charge[src])
        elif spec.edge_input == "edge_attr":
            parts.append(batch.edge_attr.to(rel.dtype))
        return edge_index, self.sh(rel), torch.cat(parts, dim=-1)


def _tp_paths(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, allowed: o3.Irreps) -> tuple[o3.Irreps, list[tuple]]:
    """'uvu' paths ``h (x) Y -> mid`` keeping only output irreps present in ``allowed``."""
    keep = {ir for _, ir in allowed}
    mid, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out in keep:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    mid = o3.Irreps(mid)
    sorted_mid, perm, _ = mid.sort()
    instructions = [(a, b, perm[c], mode, w) for a, b, c, mode, w in instructions]
    return sorted_mid, instructions


class Attention(nn.Module):
    """Multi-head SE(3)-equivariant graph attention (keys/values from a tensor product with Y)."""

    def __init__(self, irreps: o3.Irreps, irreps_sh: o3.Irreps, heads: int, radial_in: int, radial_hidden: int) -> None:
        super().__init__()
        self.irreps, self.heads = irreps, heads
        mid, instructions = _tp_paths(irreps, irreps_sh, irreps)
        self.tp = o3.TensorProduct(irreps, irreps_sh, mid, instructions, shared_weights=False, internal_weights=False)
        self.radial = FullyConnectedNet([radial_in, radial_hidden, self.tp.weight_numel], torch.nn.functional.silu)
        self.to_kv = o3.Linear(mid, irreps + irreps)
        self.to_q = o3.Linear(irreps, irreps)
        self.to_out = o3.Linear(irreps, irreps)
        per_head = sum(mul // heads * ir.dim for mul, ir in irreps)
        self.scale = per_head ** -0.5

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor) -> torch.Tensor:
        dst, src = edge_index
        kv = self.to_kv(self.tp(h[src], sh, self.radial(radial)))
        k, v = kv.split(self.irreps.dim, dim=-1)
        q = self.to_q(h)[dst]
        qh, kh = split_heads(q, self.irreps, self.heads), split_heads(k, self.irreps, self.heads)
        logits = sum((a * b).sum(dim=(-2, -1)) for a, b in zip(qh, kh)) * self.scale  # (E, heads)
        alpha = softmax(logits, dst, num_nodes=h.shape[0])
        weighted = merge_heads([b * alpha[:, :, None, None] for b in split_heads(v, self.irreps, self.heads)])
        return self.to_out(scatter(weighted, dst, dim=0, dim_size=h.shape[0], reduce="sum"))


class FeedForward(nn.Module):
    """Equivariant pointwise MLP: linear -> gate (SiLU scalars, sigmoid-gated l > 0) -> linear."""

    def __init__(self, irreps: o3.Irreps) -> None:
        super().__init__()
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
        gates = o3.Irreps([(gated.num_irreps, "0e")]) if gated.num_irreps else o3.Irreps("")
        self.gate = Gate(scalars, [torch.nn.functional.silu], gates, [torch.sigmoid] if gated.num_irreps else [], gated)
        self.lin_in = o3.Linear(irreps, self.gate.irreps_in)
        self.lin_out = o3.Linear(self.gate.irreps_out, irreps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.lin_out(self.gate(self.lin_in(h)))


class LayerUpdate(nn.Module):
    """The equivariant residual update of one layer: ``attn(LN h) + FFN(LN(h + attn))``."""

    def __init__(self, irreps: o3.Irreps, irreps_sh: o3.Irreps, heads: int, radial_in: int, radial_hidden: int) -> None:
        super().__init__()
        self.norm1 = EquivariantLayerNorm(irreps)
        self.attn = Attention(irreps, irreps_sh, heads, radial_in, radial_hidden)
        self.norm2 = EquivariantLayerNorm(irreps)
        self.ffn = FeedForward(irreps)

    def forward(self, h, x, v, edge_index, sh, radial):  # noqa: ANN001 - shared signature of the block
        a = self.attn(self.norm1(h), edge_index, sh, radial)
        return a + self.ffn(self.norm2(h + a))


class FlatBranch(nn.Module):
    """Symmetry-breaking branch: an MLP (plain or bounded) over the flattened irreps ``h_i`` and
    raw ``x_i, v_i``."""

    def __init__(self, dim: int, hidden: int, kind: str = "plain") -> None:
        super().__init__()
        self.mlp = branch_mlp(kind, [dim + 6, hidden, dim])

    def forward(self, h, x, v, edge_index, sh, radial):  # noqa: ANN001
        return self.mlp(torch.cat([h, x, v], dim=-1))


class SE3TLayer(nn.Module):
    """One relaxed SE(3)-Transformer layer (block ``update``)."""

    def __init__(self, irreps: o3.Irreps, irreps_sh: o3.Irreps, spec: SE3TransformerSpec, radial_in: int) -> None:
        super().__init__()
        self.update = Relaxed(
            LayerUpdate(irreps, irreps_sh, spec.heads, radial_in, spec.radial_hidden),
            FlatBranch(irreps.dim, spec.branch_hidden, spec.branch),
        )

    def forward(self, h, x, v, edge_index, sh, radial, branches: bool = True):  # noqa: ANN001
        """``h + update(h, ...)``; with ``branches=False`` the update's equivariant part only."""
        update = self.update if branches else equivariant_part(self.update)
        return h + update(h, x, v, edge_index, sh, radial)

    def forward_both(self, h, x, v, edge_index, sh, radial):  # noqa: ANN001
        """``(h equivariant-only, h full)`` from the same input, the equivariant update run once."""
        d_eq, d_full = outputs_both(self.update, h, x, v, edge_index, sh, radial)
        return h + d_eq, h + d_full


class SE3Transformer(nn.Module):
    """Node inputs ``|v|`` (+ ``q``) as 0e and ``v`` as 1o; output per ``spec.output``."""

    def __init__(self, spec: SE3TransformerSpec) -> None:
        super().__init__()
        self.spec = spec
        self.irreps = degree_irreps(spec.channels_per_degree)
        self.geometry = EdgeGeometry(spec)
        if spec.node_input == "atoms":
            self.irreps_in = o3.Irreps(f"{spec.atom_types}x0e")
        else:
            scalars = 1 + int(spec.charge_feature) + len(spec.node_features)
            self.irreps_in = o3.Irreps(f"{scalars}x0e + 1x1o")
        self.embed = o3.Linear(self.irreps_in, self.irreps)
        extra = {"charge_product": 1, "edge_attr": spec.edge_dim, "none": 0}[spec.edge_input]
        radial_in = spec.radial_basis + extra
        self.layers = nn.ModuleList(SE3TLayer(self.irreps, self.geometry.irreps_sh, spec, radial_in)
                                    for _ in range(spec.layers))
        scalar_out = spec.output in ("invariant", "graph")
        if spec.output == "tensor":
            self.irreps_out = o3.Irreps("1x0e + 1x2e")
            symmetric = io.CartesianTensor("ij=ji")  # irreps 0e + 2e
            self.register_buffer("tensor_basis", symmetric.reduced_tensor_products().change_of_basis.clone(),
                                 persistent=False)  # (6, 3, 3), orthonormal
        else:
            self.irreps_out = o3.Irreps(f"{spec.out_channels}x0e" if scalar_out else "1x1o")
        # no norm before the head: a layer norm would erase the physical scale of the 1o
        # features (|v|), which a displacement of ~|v| * horizon needs
        self.head = o3.Linear(self.irreps, self.irreps_out)

    def velocities(self, batch) -> torch.Tensor:  # noqa: ANN001
        """``batch.vel``, or zeros for molecules (the branch's raw-coordinate stream reads them)."""
        return batch.vel if self.spec.node_input == "velocity" else torch.zeros_like(batch.pos)

    def node_inputs(self, batch) -> torch.Tensor:  # noqa: ANN001
        if self.spec.node_input == "atoms":
            return batch.onehot.to(batch.pos.dtype)
        v = batch.vel
        parts = [v.norm(dim=-1, keepdim=True)]
        if self.spec.charge_feature:
            parts.append(batch.charge.to(v.dtype))
        parts += read_node_features(batch, self.spec.node_features, v.dtype)
        return torch.cat(parts + [v], dim=-1)

    def features(self, batch) -> torch.Tensor:  # noqa: ANN001
        """The last layer's irreps features ``(n, irreps.dim)``."""
        h, args = self._inputs(batch)
        for layer in self.layers:
            h = layer(h, *args)
        return h

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        # e3nn's generated tensor-product code is not autocast-aware (mixed bf16/fp32 operands
        # fail), so under train.amp this network runs in float32
        with torch.autocast(device_type=batch.pos.device.type, enabled=False):
            return self._output(self.features(batch), batch)

    def forward_both(self, batch) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        """``(equivariant-only output, full output)`` in one pass: the same values as ``forward``
        in equivariant-only mode and as it is now, with the edge geometry (spherical harmonics,
        radial basis), the embedding and the first layer's equivariant update computed once."""
        with torch.autocast(device_type=batch.pos.device.type, enabled=False):
            h, args = self._inputs(batch)
            if not self.layers:
                out = self._output(h, batch)
                return out, out
            outputs = []
            for first, branches in zip(self.layers[0].forward_both(h, *args), (False, True)):
                out = first
                for layer in self.layers[1:]:
                    out = layer(out, *args, branches=branches)
                outputs.append(self._output(out, batch))
            return outputs[0], outputs[1]

    def _inputs(self, batch):  # noqa: ANN001, ANN202
        """The embedded node inputs and the other arguments of every layer:
        ``(positions, velocities, edge_index, spherical harmonics, radial basis)``."""
        edge_index, sh, radial = self.geometry(batch)
        return self.embed(self.node_inputs(batch)), (batch.pos, self.velocities(batch), edge_index, sh, radial)

    def _output(self, h: torch.Tensor, batch) -> torch.Tensor:  # noqa: ANN001
        """The head on the last layer's features, per ``spec.output``."""
        out = self.head(h)
        if self.spec.output == "position":
            return batch.pos + out
        if self.spec.output in ("graph", "tensor"):
            nodes = batch.batch if getattr(batch, "batch", None) is not None else torch.zeros(
                out.shape[0], dtype=torch.long, device=out.device)
            out = scatter(out, nodes, dim=0, dim_size=int(nodes.max()) + 1 if nodes.numel() else 0,
                          reduce=self.spec.pool)
        if self.spec.output == "tensor":
            return torch.einsum("gk,kij->gij", out, self.tensor_basis.to(out.dtype))
        return out


def build_se3_transformer(spec: SE3TransformerSpec) -> SE3Transformer:
    """SE(3)-Transformer (Fuchs et al. 2020) on e3nn: multi-head attention with TP keys/values."""
    return SE3Transformer(spec)
