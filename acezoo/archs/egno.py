"""EGNO (Xu et al., "Equivariant Graph Neural Operator for Modeling 3D Dynamics", ICML 2024),
relaxed with ACE as in the ACE authors' EGNO code.

Inputs: ``pos`` (n, 3), ``vel`` (n, 3), ``edge_index`` and, by ``edge_input``, ``charge`` (n, 1)
(edge input ``q_i q_j``) or an invariant ``edge_attr`` (E, edge_dim); the named ``node_features``
(e.g. MoCap's ``height``). Output: the positions of the next ``K = frames`` frames, ``(n, K, 3)``
(``(n, 3)`` when ``K = 1``, the layout of a one-frame target).

The model is EGNN run on ``K`` copies of the graph at once, one per output frame, with a
temporal convolution in Fourier space before every EGNN layer. Node ``i`` at frame ``k`` starts
from the input state, ``x_ik = x_i``, ``v_ik = v_i``, ``h_ik = W [|v_i|, features_i, tau_k]``
(``tau_k``: a sinusoidal embedding of ``k``, :func:`acezoo.nn.temporal.time_embedding`). With
``T`` the linear temporal convolution of :class:`acezoo.nn.temporal.SpectralTimeConv` (the
lowest ``modes`` Fourier modes along ``k``, mixed by learned complex weights) and ``c`` the
centroid of the graph's input positions, block ``l`` computes::

    h_ik <- h_ik + LeakyReLU( T_h(h_i.)_k )                                    (features)
    [x_ik - c, v_ik] <- [x_ik - c, v_ik] + T_x([x_i. - c, v_i.])_k              (3 x 2 per frame)
    (h, x) <- EGNN layer l on each frame's graph (edges within a frame only)

``T_x`` mixes the two channels (position, velocity) with weights shared over the three
components. The EGNN layer is :class:`acezoo.archs.egnn.EGNNLayer` with the time-convolved
velocities, messages ``phi_e(h_i, h_j, |x_i - x_j|^2, a_ij)`` and edge input ``a_ij`` (hop type
and, with ``initial_distance``, ``|x_i^0 - x_j^0|^2``, as EGNO); its coordinate and feature
updates are the relaxed blocks ``layers.<l>.x`` and ``layers.<l>.h`` (two gammas per layer, as
the ACE authors' ``gammas_x`` and ``gammas_h``)::

    x_ik <- x_ik + [ mean_j d_ij phi_x(m_ij) + phi_v(h_ik) v_ik ]  + gamma_x * psi_x
    h_ik <- h_ik + [ phi_h(h_ik, sum_j m_ij) ]                     + gamma_h * psi_h

With ``branch: stream`` (the default, the ACE authors' form) ``psi_h = SN(BN(A r_ik))`` of the
raw inputs ``r_ik = [|v_i|, features_i, tau_k, x_i, v_i]`` and ``psi_x = SN(SiLU(BN(SN(BN(B
x_ik)))))`` of the layer's current (time-convolved) positions; the other branch kinds are
EGNN's MLPs over ``[h_ik, x_ik, v_ik]``.

Equivariance (every gamma 0, or pruned): ``T`` acts on the frame and channel axes only, so it
commutes with rotations and reflections of the components; ``x - c`` is translation invariant
and ``c`` is added back, so the coordinate convolution is E(3)-equivariant; ``c`` is a mean over
a graph's nodes and every map acts node by node, so node permutations commute with all of it;
``T_h`` and ``tau`` act on invariants. The model is E(3) x S_n equivariant in ``(pos, vel)``,
the node features held fixed (they enter as invariants: MoCap's height is not one, see
``node_features``).

Where the ACE authors' EGNO code differs (kept out here so that the strict model is exactly
equivariant, or for the reason given):

- their EGNN layer clamps each component of the aggregated coordinate update to +-100, which
  breaks rotation equivariance once it acts; ``coord_clamp`` offers an equivariant norm cap
  instead (off by default);
- their MoCap loader divides the height feature by its maximum over the batch (``Z / Z.max()``),
  so a sample's prediction depends on the other samples in its batch; acezoo reads the data
  set's ``height`` (y / 10) per sample;
- their feature stream is chained across layers (``s_0 = A [h_in, tau]``, ``s_l = SN_l(BN_l(s_{l-1}))``,
  ``psi_h = s_l``) and their coordinate stream shares one map ``B`` across layers; here every
  layer's branch has its own input map (acezoo's EGNN ``stream`` branches), so each block's branch
  is self-contained and can be pruned alone (with no nonlinearity between the chained steps,
  both are affine maps of batch-normalised inputs); the feature stream also reads ``x_i, v_i``;
- their feature update replaces ``h`` (``h <- phi_h(h, sum m)``); EGNNLayer adds it (residual).

Implementation: nodes and frames form one batch axis (row ``i K + k``); the edges of the ``K``
copies are ``edge_index`` shifted per frame, built once per forward pass, so there is no Python
loop over frames or samples. :meth:`EGNO.forward_both` gives the equivariant-only and the full
output in one pass (the inputs, the embedding and the first block's convolutions, messages and
equivariant updates are shared).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from acezoo.archs.egnn import EdgeGraph, EGNNLayer
from acezoo.archs.specs import EGNOSpec
from acezoo.nn.node_features import read_node_features
from acezoo.nn.relaxed import Relaxed
from acezoo.nn.scatter import scatter
from acezoo.nn.temporal import SpectralTimeConv, time_embedding

__all__ = ["EGNOSpec", "EGNO", "FeatureTimeConv", "CoordTimeConv", "FrameGraph", "build_egno"]


class FeatureTimeConv(nn.Module):
    """``h <- h + LeakyReLU(T_h h)`` on invariant features ``(n, K, hidden)``: invariant in, invariant out."""

    def __init__(self, hidden: int, modes: int) -> None:
        super().__init__()
        self.conv = SpectralTimeConv(hidden, hidden, modes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + F.leaky_relu(self.conv(h))


class CoordTimeConv(nn.Module):
    """``[x - c, v] <- [x - c, v] + T_x [x - c, v]`` on positions and velocities ``(n, K, 3)``
    (``c``: the centroid of each node's graph, broadcastable to ``x``); E(3)-equivariant: the two
    channels are mixed with weights shared over the three components."""

    def __init__(self, modes: int, init_scale: float = 0.1) -> None:
        super().__init__()
        self.conv = SpectralTimeConv(2, 2, modes, init_scale=init_scale)

    def forward(self, x: torch.Tensor, v: torch.Tensor, centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.stack([x - centre, v], dim=-1)  # (n, K, 3, 2)
        u = u + self.conv(u)
        return u[..., 0] + centre, u[..., 1]


class FrameGraph:
    """The ``K`` per-frame copies of a graph: node ``(i, k)`` is row ``i K + k``, and edge
    ``(j -> i)`` of frame ``k`` joins rows ``j K + k`` and ``i K + k`` (edges in ``(edge, frame)``
    order). ``graph`` is their :class:`EdgeGraph`; :meth:`expand` copies per-edge inputs to them."""

    def __init__(self, edge_index: torch.Tensor, num_nodes: int, frames: int) -> None:
        self.frames = frames
        steps = torch.arange(frames, device=edge_index.device, dtype=edge_index.dtype)
        self.index = (edge_index.unsqueeze(-1) * frames + steps).reshape(2, -1)
        self.graph = EdgeGraph(self.index, num_nodes * frames)

    def expand(self, e: torch.Tensor) -> torch.Tensor:
        """``(E, w)`` per-edge values -> ``(E K, w)``, the same for every frame."""
        return e.unsqueeze(1).expand(e.shape[0], self.frames, *e.shape[1:]).reshape(-1, *e.shape[1:])


@dataclass
class _Inputs:
    node: torch.Tensor  # (n K, width_in): invariant inputs with the time embedding
    x: torch.Tensor  # (n K, 3)
    v: torch.Tensor  # (n K, 3)
    centre: torch.Tensor  # (n, 1, 3): the centroid of each node's graph (input positions)
    frames: FrameGraph
    edge_attr: torch.Tensor | None  # (E K, width) in edge_index order
    raw: torch.Tensor | None  # (n K, width_in + 6): the stream branches' inputs, when they run


class EGNO(nn.Module):
    """EGNO over ``spec``: ``K`` future positions per node in one pass (see the module docstring)."""

    def __init__(self, spec: EGNOSpec) -> None:
        super().__init__()
        self.spec = spec
        self.width_in = 1 + len(spec.node_features) + spec.time_embedding
        self.embed = nn.Linear(self.width_in, spec.hidden)
        edge_width = {"charge_product": 1, "edge_attr": spec.edge_dim, "none": 0}[spec.edge_input]
        edge_width += int(spec.initial_distance)
        self.time_h = nn.ModuleList(FeatureTimeConv(spec.hidden, spec.modes) for _ in range(spec.layers))
        self.time_x = nn.ModuleList(CoordTimeConv(spec.modes) for _ in range(spec.layers))
        self.layers = nn.ModuleList(
            EGNNLayer(spec.hidden, spec.branch_width, edge_width, spec.coord_agg, velocity=True, branch=spec.branch,
                      raw_width=self.width_in + 6, coord_clamp=spec.coord_clamp)
            for _ in range(spec.layers)
        )

    # -- inputs -----------------------------------------------------------------------------
    def _inputs(self, batch) -> _Inputs:  # noqa: ANN001
        spec, frames = self.spec, self.spec.frames
        pos, vel = batch.pos, batch.vel
        n = pos.shape[0]
        parts = [vel.norm(dim=-1, keepdim=True), *read_node_features(batch, spec.node_features, pos.dtype)]
        node = torch.cat(parts, dim=-1).unsqueeze(1).expand(n, frames, -1)
        if spec.time_embedding:
            tau = time_embedding(frames, spec.time_embedding, pos.dtype, pos.device)
            node = torch.cat([node, tau.unsqueeze(0).expand(n, -1, -1)], dim=-1)
        node = node.reshape(n * frames, self.width_in)
        x = pos.unsqueeze(1).expand(n, frames, 3).reshape(n * frames, 3)
        v = vel.unsqueeze(1).expand(n, frames, 3).reshape(n * frames, 3)
        graph_of = getattr(batch, "batch", None)
        if graph_of is None:
            centre = pos.mean(dim=0, keepdim=True).expand(n, 3)
        else:
            centre = scatter(pos, graph_of, reduce="mean").index_select(0, graph_of)
        frame_graph = FrameGraph(batch.edge_index, n, frames)
        edge_attr = self._edge_inputs(batch)
        edge_attr = None if edge_attr is None else frame_graph.expand(edge_attr)
        raw = torch.cat([node, x, v], dim=-1) if self._stream_branch_active() else None
        return _Inputs(node, x, v, centre.unsqueeze(1), frame_graph, edge_attr, raw)

    def _edge_inputs(self, batch) -> torch.Tensor | None:  # noqa: ANN001
        """``(E, width)``: ``q_i q_j`` or ``batch.edge_attr`` (or nothing), then ``|x_i^0 - x_j^0|^2``."""
        row, col = batch.edge_index[0], batch.edge_index[1]
        parts: list[torch.Tensor] = []
        if self.spec.edge_input == "charge_product":
            q = batch.charge.to(batch.pos.dtype)
            parts.append(q.index_select(0, row) * q.index_select(0, col))
        elif self.spec.edge_input == "edge_attr":
            parts.append(batch.edge_attr.to(batch.pos.dtype))
        if self.spec.initial_distance:
            diff = batch.pos.index_select(0, row) - batch.pos.index_select(0, col)
            parts.append((diff * diff).sum(-1, keepdim=True))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def _stream_branch_active(self) -> bool:
        """Whether a ``stream`` feature branch will be evaluated (it reads the raw inputs)."""
        return self.spec.branch == "stream" and any(
            isinstance(layer.h, Relaxed) and not layer.h.equivariant_only for layer in self.layers)

    # -- the blocks ---------------------------------------------------------------------------
    def _convolve(self, i: int, h: torch.Tensor, x: torch.Tensor, v: torch.Tensor,
                  centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Block ``i``'s temporal convolutions of ``h``, ``x`` and ``v`` (rows ``i K + k``)."""
        n, frames = centre.shape[0], self.spec.frames
        h = self.time_h[i](h.view(n, frames, -1)).reshape(n * frames, -1)
        x, v = self.time_x[i](x.view(n, frames, 3), v.view(n, frames, 3), centre)
        return h, x.reshape(n * frames, 3), v.reshape(n * frames, 3)

    def _features(self, i: int) -> bool:
        """Whether layer ``i`` updates the features: the last layer's update is never read, and is
        skipped when that is exact (no batch-norm / spectral-norm state it would update in training)."""
        stateless = next(self.layers[i].h.buffers(), None) is None
        return i < len(self.layers) - 1 or (self.training and not stateless)

    def _output(self, x: torch.Tensor, n: int) -> torch.Tensor:
        return x.view(n, 3) if self.spec.frames == 1 else x.view(n, self.spec.frames, 3)

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        s = self._inputs(batch)
        h, x, v = self.embed(s.node), s.x, s.v
        for i, layer in enumerate(self.layers):
            h, x, v = self._convolve(i, h, x, v, s.centre)
            h, x = layer(h, x, v, s.frames.index, s.edge_attr, s.frames.graph, update_features=self._features(i),
                         raw=s.raw)
        return self._output(x, s.centre.shape[0])

    def forward_both(self, batch) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        """``(equivariant-only output, full output)`` in one pass: the same values as ``forward``
        in equivariant-only mode and as it is now, with the inputs, the embedding and the first
        block (its convolutions, messages and equivariant updates) computed once."""
        s = self._inputs(batch)
        n = s.centre.shape[0]
        h, x, v = self._convolve(0, self.embed(s.node), s.x, s.v, s.centre)
        eq, full = self.layers[0].forward_both(h, x, v, s.frames.index, s.edge_attr, s.frames.graph,
                                               update_features=self._features(0), raw=s.raw)
        outputs = []
        for (h, x), branches in ((eq, False), (full, True)):
            vb = v  # the velocities after block 0's convolution (EGNN layers keep them)
            for i in range(1, len(self.layers)):
                h, x, vb = self._convolve(i, h, x, vb, s.centre)
                h, x = self.layers[i](h, x, vb, s.frames.index, s.edge_attr, s.frames.graph,
                                      update_features=self._features(i), raw=s.raw, branches=branches)
            outputs.append(self._output(x, n))
        return outputs[0], outputs[1]


def build_egno(spec: EGNOSpec) -> EGNO:
    """EGNO (Xu et al. 2024): EGNN layers and temporal Fourier convolutions, K future frames in one pass."""
    return EGNO(spec)
