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
for molecules). With ``branch: stream`` (the ACE authors' EGNO form) the branches read no
equivariant features: ``psi_h = SN(BN(A r_i))`` of the layer-0 inputs ``r_i = [node inputs,
x_i^0, v_i]`` and ``psi_x = SN(SiLU(BN(SN(BN(B x_i)))))`` of the current positions (``SN``: a
spectrally normalised linear map, ``BN``: batch norm, ``A, B``: plain linear maps). Block
names are ``layers.<i>.x`` and ``layers.<i>.h``. With ``edge_gate`` the
messages are scaled by an inferred edge weight, ``m_ij <- sigmoid(w . m_ij) m_ij``; with
``coord_updates: false`` (the paper's QM9 set-up) positions stay fixed and there are no
``layers.<i>.x`` blocks. With ``coord_clamp: c`` each coordinate message ``d_ij phi_x(m_ij)`` is
scaled by ``min(1, c / |d_ij phi_x(m_ij)|)`` (a norm cap: equivariant, unlike the EGNN authors'
per-component clamp to +-100).

Implementation (the same maths and parameters as the formulas above, cheaper at these sizes):

- the first linear map of ``phi_e`` on ``[h_i, h_j, |d_ij|^2, a_ij]`` is evaluated as
  ``(W_a h + b)_i + (W_b h)_j + W_s [|d_ij|^2, a_ij]``: ``W_a h`` and ``W_b h`` once per node,
  then gathered to the edges, instead of an ``(edges, 2 hidden + 1 + edge_dim)`` product (and
  likewise in the backward pass); the weight stays the one ``nn.Linear`` ``phi_e.0``, so
  checkpoints load unchanged;
- edges are read through an :class:`EdgeGraph` built once per forward pass: when the receivers
  of ``edge_index`` are ``0, .., 0, 1, .., 1, ...`` with one in-degree ``d`` for every node
  (checked exactly; every PyG batch of fully connected graphs of one size, e.g. N-body), edge
  tensors are ``(nodes, d, ...)`` views, gathers by receiver are broadcasts and the sums /
  means over a receiver's edges are reductions; any other ``edge_index`` (skeletons, radius
  graphs, permuted edges) takes the general path (``index_select`` / ``index_add``);
- with ``output: position`` the last layer's feature update, which nothing reads, is skipped
  (unless it holds batch-norm / spectral-norm state that a training pass would update);
- :meth:`EGNN.forward_both` gives the equivariant-only and the full output in one pass (the
  trainer's validation): the inputs, the embedding and the first layer's messages and
  equivariant updates, identical in both, are computed once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acezoo.archs.specs import EGNNSpec
from acezoo.nn.bounded import BoundedMLP, branch_mlp
from acezoo.nn.mlp import MLP
from acezoo.nn.node_features import read_node_features
from acezoo.nn.relaxed import Relaxed, equivariant_part, outputs_both
from acezoo.nn.scatter import scatter

__all__ = ["EGNNSpec", "EGNN", "EGNNLayer", "EdgeGraph", "StreamCoordBranch", "StreamFeatureBranch", "build_egnn"]


def _regular_degree(row: torch.Tensor, num_nodes: int) -> int | None:
    """``d`` when ``row`` is ``0 (d times), 1 (d times), ..., num_nodes - 1 (d times)``, else None.

    A data-dependent bool: under ``torch.compile`` it runs eagerly (``torch.compiler.disable``, one
    quiet graph break). The wrapper is made when the check is traced, not at import, so importing
    the EGNN does not import ``torch._dynamo`` (about 1 s of start-up); eager calls run the check
    itself.
    """
    if torch.compiler.is_compiling():
        return torch.compiler.disable(_degree_of)(row, num_nodes)
    return _degree_of(row, num_nodes)


def _degree_of(row: torch.Tensor, num_nodes: int) -> int | None:
    """The check of :func:`_regular_degree`."""
    edges = row.numel()
    if num_nodes == 0 or edges == 0 or edges % num_nodes:
        return None
    d = edges // num_nodes
    nodes = torch.arange(num_nodes, device=row.device, dtype=row.dtype)
    return d if bool((row.view(num_nodes, d) == nodes.unsqueeze(1)).all()) else None


class EdgeGraph:
    """The edges of one forward pass, and the gathers and aggregations the layers need.

    ``edge_index`` is ``(2, E)``, row 0 the receiver ``i``, row 1 the sender ``j``. Edge
    tensors (messages, ``d_ij``, edge inputs) are held in the graph's *edge layout*:

    - regular (the receivers are ``0, .., 0, 1, .., 1, ...``, every node ``d`` times; checked
      exactly, e.g. any PyG batch of fully connected graphs of one size): ``(num_nodes, d, ...)``,
      the edges of receiver ``i`` in row ``i``; gathers by receiver are broadcasts and the
      aggregations reductions over dim 1;
    - general (any other ``edge_index``, e.g. a skeleton or a radius graph): ``(E, ...)`` in
      ``edge_index`` order; gathers are ``index_select`` and aggregations ``index_add``.

    Both give the same values up to float round-off. :meth:`edges` puts an ``(E, ...)`` tensor
    into the layout and :meth:`flat` takes it back out.
    """

    __slots__ = ("row", "col", "num_nodes", "degree", "_count")

    def __init__(self, edge_index: torch.Tensor, num_nodes: int, detect_regular: bool = True) -> None:
        self.row, self.col = edge_index[0], edge_index[1]
        self.num_nodes = num_nodes
        self.degree = _regular_degree(self.row, num_nodes) if detect_regular else None
        self._count: torch.Tensor | None = None

    @classmethod
    def of(cls, graph: "EdgeGraph | torch.Tensor", num_nodes: int) -> "EdgeGraph":
        """``graph`` itself, or the (general-layout) graph of a bare receiver vector ``row`` (the
        former last argument of the update blocks, whose edge tensors are ``(E, ...)``)."""
        if isinstance(graph, EdgeGraph):
            return graph
        row = graph if graph.dim() == 1 else graph[0]
        return cls(torch.stack([row, row]), num_nodes, detect_regular=False)

    @property
    def regular(self) -> bool:
        """Whether the edge layout is ``(num_nodes, d, ...)``."""
        return self.degree is not None

    def edges(self, e: torch.Tensor) -> torch.Tensor:
        """An ``(E, ...)`` edge tensor in the edge layout (a view)."""
        return e if self.degree is None else e.view(self.num_nodes, self.degree, *e.shape[1:])

    def flat(self, e: torch.Tensor) -> torch.Tensor:
        """An edge tensor in the layout as ``(E, ...)``, in ``edge_index`` order."""
        return e if self.degree is None else e.reshape(-1, *e.shape[2:])

    def senders(self, t: torch.Tensor) -> torch.Tensor:
        """``t_j`` per edge (a node tensor gathered to the edges)."""
        return self.edges(t.index_select(0, self.col))

    def add_receivers(self, e: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``e_ij + t_i`` (``e`` an edge tensor, ``t`` a node tensor)."""
        return e + (t.unsqueeze(1) if self.degree is not None else t.index_select(0, self.row))

    def add_receivers_(self, e: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``e_ij += t_i`` in place; returns ``e``."""
        return e.add_(t.unsqueeze(1) if self.degree is not None else t.index_select(0, self.row))

    def mul_receivers(self, e: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``e_ij * t_i``."""
        return e * (t.unsqueeze(1) if self.degree is not None else t.index_select(0, self.row))

    def differences(self, t: torch.Tensor) -> torch.Tensor:
        """``t_i - t_j`` per edge."""
        ti = t.unsqueeze(1) if self.degree is not None else t.index_select(0, self.row)
        return ti - self.senders(t)

    def sum(self, e: torch.Tensor) -> torch.Tensor:
        """``sum_j e_ij`` per receiver ``i`` (0 for a node without edges)."""
        if self.degree is not None:
            return e.sum(1)
        return e.new_zeros(self.num_nodes, *e.shape[1:]).index_add(0, self.row, e)

    def mean(self, e: torch.Tensor) -> torch.Tensor:
        """``mean_j e_ij`` per receiver ``i`` (0 for a node without edges)."""
        if self.degree is not None:
            return e.mean(1)
        if self._count is None or self._count.dtype != e.dtype:
            # index_add, not bincount: no data-dependent output size, so torch.compile traces it
            ones = torch.ones_like(self.row, dtype=e.dtype)
            self._count = e.new_zeros(self.num_nodes).index_add_(0, self.row, ones).clamp_(min=1)
        return self.sum(e) / self._count.view(-1, *([1] * (e.dim() - 1)))

    def aggregate(self, e: torch.Tensor, reduce: str) -> torch.Tensor:
        """``sum`` or ``mean`` over each receiver's edges."""
        if reduce == "sum":
            return self.sum(e)
        if reduce == "mean":
            return self.mean(e)
        raise ValueError(f"unknown aggregation {reduce!r}; allowed: sum, mean")


def clamp_norm(t: torch.Tensor, cap: float) -> torch.Tensor:
    """``t * min(1, cap / |t|)`` per vector (last dim): norms capped at ``cap``, directions kept
    (so it commutes with rotations and reflections, unlike a per-component clamp)."""
    norm = t.norm(dim=-1, keepdim=True)
    return t * (cap / norm.clamp(min=cap))


class CoordUpdate(nn.Module):
    """Equivariant position update ``mean_j d_ij phi_x(m_ij) + phi_v(h_i) v_i``; with ``clamp``
    each message ``d_ij phi_x(m_ij)`` has its norm capped at ``clamp`` first."""

    def __init__(self, hidden: int, agg: str, velocity: bool = True, clamp: float | None = None) -> None:
        super().__init__()
        last = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.001)
        self.phi_x = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)
        self.phi_v = MLP([hidden, hidden, 1]) if velocity else None
        self.agg = agg
        self.clamp = clamp

    def forward(self, h, x, v, m, diff, graph, raw=None):  # noqa: ANN001 - shared signature of the block
        trans = diff * self.phi_x(m)
        if self.clamp is not None:
            trans = clamp_norm(trans, self.clamp)
        agg = EdgeGraph.of(graph, x.shape[0]).aggregate(trans, self.agg)
        return agg if self.phi_v is None else agg + self.phi_v(h) * v


class FeatureUpdate(nn.Module):
    """Invariant feature update ``phi_h(h_i, sum_j m_ij)``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.phi_h = MLP([2 * hidden, hidden, hidden])

    def forward(self, h, x, v, m, diff, graph, raw=None):  # noqa: ANN001
        agg = EdgeGraph.of(graph, h.shape[0]).sum(m)
        return self.phi_h(torch.cat([h, agg], dim=-1))


class AbsoluteBranch(nn.Module):
    """Symmetry-breaking branch: an MLP (plain or bounded) over ``[h_i, x_i, v_i]`` (raw absolute
    coordinates)."""

    def __init__(self, hidden: int, branch_hidden: int, out: int, kind: str = "plain") -> None:
        super().__init__()
        self.mlp = branch_mlp(kind, [hidden + 6, branch_hidden, out])

    def forward(self, h, x, v, m, diff, graph, raw=None):  # noqa: ANN001
        return self.mlp(torch.cat([h, x, v], dim=-1))


class StreamFeatureBranch(nn.Module):
    """``stream`` feature branch: ``SN(BN(A r_i))`` of the layer-0 inputs ``r_i = [node inputs,
    x_i^0, v_i]`` (the ACE authors' EGNO form; it reads no equivariant feature)."""

    def __init__(self, raw: int, branch_hidden: int, out: int) -> None:
        super().__init__()
        self.inp = nn.Linear(raw, branch_hidden)
        self.mlp = BoundedMLP([branch_hidden, out])

    def forward(self, h, x, v, m, diff, graph, raw=None):  # noqa: ANN001
        if raw is None:
            raise ValueError("the stream branch needs the layer-0 inputs `raw`")
        return self.mlp(self.inp(raw))


class StreamCoordBranch(nn.Module):
    """``stream`` coordinate branch: ``SN(SiLU(BN(SN(BN(B x_i)))))`` of the current absolute
    positions (the ACE authors' EGNO form)."""

    def __init__(self, branch_hidden: int) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 3)
        self.mlp = BoundedMLP([3, branch_hidden, 3])

    def forward(self, h, x, v, m, diff, graph, raw=None):  # noqa: ANN001
        return self.mlp(self.inp(x))


def _branches(kind: str, hidden: int, branch_hidden: int, raw: int) -> tuple[nn.Module, nn.Module]:
    """The (coordinate, feature) symmetry-breaking branches of one layer."""
    if kind == "stream":
        return StreamCoordBranch(branch_hidden), StreamFeatureBranch(raw, branch_hidden, hidden)
    return AbsoluteBranch(hidden, branch_hidden, 3, kind), AbsoluteBranch(hidden, branch_hidden, hidden, kind)


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
        raw_width: int = 0,
        coord_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.phi_e = MLP([2 * hidden + 1 + edge_dim, hidden, hidden], last_act=True)
        self.gate = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid()) if edge_gate else None
        psi_x, psi_h = _branches(branch, hidden, branch_hidden, raw_width)
        self.x = Relaxed(CoordUpdate(hidden, agg, velocity, coord_clamp), psi_x) if coord_updates else None
        self.h = Relaxed(FeatureUpdate(hidden), psi_h)

    def messages(self, h: torch.Tensor, radial: torch.Tensor, edge_attr: torch.Tensor | None,
                 graph: EdgeGraph) -> torch.Tensor:
        """``m_ij = phi_e([h_i, h_j, radial_ij, edge_attr_ij])`` in the edge layout.

        The first linear map ``W [h_i, h_j, s_ij] + b`` (``s_ij = [radial_ij, edge_attr_ij]``) is
        evaluated as ``W_s s_ij + (W_b h)_j + (W_a h + b)_i``: the ``h`` parts once per node,
        then gathered to the edges; only the edge scalars are multiplied per edge.
        """
        first = self.phi_e[0]
        w, width = first.weight, h.shape[-1]
        receiver = F.linear(h, w[:, :width], first.bias)  # W_a h + b, per node
        sender = F.linear(h, w[:, width:2 * width])  # W_b h, per node
        scalars = radial if edge_attr is None else torch.cat([radial, edge_attr.to(radial.dtype)], dim=-1)
        pre = F.linear(scalars, w[:, 2 * width:])
        pre += graph.senders(sender)  # in place: one (edges, hidden) buffer for the pre-activation
        graph.add_receivers_(pre, receiver)
        m = pre
        for i, module in enumerate(self.phi_e):  # the activation and the rest of phi_e
            if i:
                m = module(m)
        return m

    def forward(self, h, x, v, edge_index, edge_attr, graph: EdgeGraph | None = None,  # noqa: ANN001
                update_features: bool = True, raw: torch.Tensor | None = None, branches: bool = True):
        """One layer; returns ``(h_new, x_new)``.

        ``edge_attr``: ``(E, edge_dim)`` or None; ``graph``: the :class:`EdgeGraph` of
        ``edge_index`` when the caller built it (once for all layers), else built here. With
        ``update_features=False`` the feature update is skipped and ``h`` returned as is (for a
        last layer whose features nobody reads). ``raw``: the layer-0 inputs that a ``stream``
        feature branch reads (other branches ignore it). With ``branches=False`` every block runs
        its equivariant part only (as in equivariant-only mode, whatever the blocks' flags).
        """
        graph = EdgeGraph(edge_index, h.shape[0]) if graph is None else graph
        args = self._block_inputs(h, x, v, edge_attr, graph, raw)
        x_block = self.x if branches or self.x is None else equivariant_part(self.x)
        h_block = self.h if branches else equivariant_part(self.h)
        x_new = x if x_block is None else x + x_block(*args)
        h_new = h + h_block(*args) if update_features else h
        return h_new, x_new

    def forward_both(self, h, x, v, edge_index, edge_attr, graph: EdgeGraph | None = None,  # noqa: ANN001
                     update_features: bool = True, raw: torch.Tensor | None = None):
        """``((h, x) equivariant-only, (h, x) full)`` from the same input: the messages and the
        equivariant updates are computed once (as :meth:`forward` with ``branches`` False and
        True)."""
        graph = EdgeGraph(edge_index, h.shape[0]) if graph is None else graph
        args = self._block_inputs(h, x, v, edge_attr, graph, raw)
        x_eq = x_full = x
        if self.x is not None:
            dx_eq, dx = outputs_both(self.x, *args)
            x_eq, x_full = x + dx_eq, x + dx
        h_eq = h_full = h
        if update_features:
            dh_eq, dh = outputs_both(self.h, *args)
            h_eq, h_full = h + dh_eq, h + dh
        return (h_eq, x_eq), (h_full, x_full)

    def _block_inputs(self, h, x, v, edge_attr, graph: EdgeGraph, raw):  # noqa: ANN001, ANN202
        """The arguments of the update blocks: ``(h, x, v, m, d, graph, raw)`` with the messages
        ``m_ij`` (gated with ``edge_gate``) and the differences ``d_ij = x_i - x_j``."""
        diff = graph.differences(x)
        radial = (diff * diff).sum(-1, keepdim=True)
        m = self.messages(h, radial, None if edge_attr is None else graph.edges(edge_attr), graph)
        if self.gate is not None:
            m = m * self.gate(m)
        return h, x, v, m, diff, graph, raw


def _stateless(module: nn.Module) -> bool:
    """No buffers (batch-norm statistics, spectral-norm vectors) that a forward pass would update."""
    return next(module.buffers(), None) is None


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
            width_in = 1 + int(spec.charge_feature) + len(spec.node_features)
        self.embed = nn.Linear(width_in, spec.hidden)
        edge_width = {"charge_product": 1, "edge_attr": spec.edge_dim, "none": 0}[spec.edge_input]
        edge_width += int(spec.initial_distance)
        self.layers = nn.ModuleList(
            EGNNLayer(spec.hidden, spec.branch_hidden, edge_width, spec.coord_agg, spec.node_input == "velocity",
                      spec.coord_updates, spec.edge_gate, spec.branch, raw_width=width_in + 6,
                      coord_clamp=spec.coord_clamp)
            for _ in range(spec.layers)
        )
        self.readout = GraphReadout(spec.hidden, spec.out_channels, spec.pool) if spec.output == "graph" else None

    def node_inputs(self, batch) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        """Invariant node inputs and the velocities (zeros for molecules; the branch reads them)."""
        if self.spec.node_input == "atoms":
            return batch.onehot.to(batch.pos.dtype), torch.zeros_like(batch.pos)
        v = batch.vel
        parts = [v.norm(dim=-1, keepdim=True)]
        if self.spec.charge_feature:
            parts.append(batch.charge.to(v.dtype))
        parts += read_node_features(batch, self.spec.node_features, v.dtype)
        return (torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]), v

    def edge_inputs(self, batch, graph: EdgeGraph | None = None) -> torch.Tensor | None:  # noqa: ANN001
        """The edge input ``a_ij``, ``(E, width)``: ``q_i q_j`` or ``batch.edge_attr`` (or nothing), then
        ``|x_i^0 - x_j^0|^2`` of the input positions with ``initial_distance``; None if empty."""
        parts: list[torch.Tensor] = []
        if self.spec.edge_input == "charge_product" or self.spec.initial_distance:
            graph = EdgeGraph(batch.edge_index, batch.pos.shape[0]) if graph is None else graph
        if self.spec.edge_input == "charge_product":
            parts.append(graph.flat(graph.mul_receivers(graph.senders(batch.charge), batch.charge)))
        elif self.spec.edge_input == "edge_attr":
            parts.append(batch.edge_attr)
        if self.spec.initial_distance:
            diff = graph.differences(batch.pos)
            parts.append(graph.flat((diff * diff).sum(-1, keepdim=True)))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else torch.cat([p.to(batch.pos.dtype) for p in parts], dim=-1)

    def _stream_branch_active(self) -> bool:
        """Whether a ``stream`` feature branch will be evaluated (it reads the layer-0 inputs)."""
        return self.spec.branch == "stream" and any(
            isinstance(layer.h, Relaxed) and not layer.h.equivariant_only for layer in self.layers)

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        node, v, graph, edge_attr, raw = self._inputs(batch)
        h, x = self.embed(node), batch.pos
        for i, layer in enumerate(self.layers):
            h, x = layer(h, x, v, batch.edge_index, edge_attr, graph, update_features=self._features(i), raw=raw)
        return self._output(h, x, batch)

    def forward_both(self, batch) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        """``(equivariant-only output, full output)`` in one pass: the same values as ``forward``
        in equivariant-only mode and as it is now, with the inputs, the embedding and the
        first layer's messages and equivariant updates (identical in both) computed once."""
        node, v, graph, edge_attr, raw = self._inputs(batch)
        h, x = self.embed(node), batch.pos
        if not self.layers:
            out = self._output(h, x, batch)
            return out, out
        eq, full = self.layers[0].forward_both(h, x, v, batch.edge_index, edge_attr, graph,
                                               update_features=self._features(0), raw=raw)
        outputs = []
        for (h, x), branches in ((eq, False), (full, True)):
            for i in range(1, len(self.layers)):
                h, x = self.layers[i](h, x, v, batch.edge_index, edge_attr, graph,
                                      update_features=self._features(i), raw=raw, branches=branches)
            outputs.append(self._output(h, x, batch))
        return outputs[0], outputs[1]

    def _inputs(self, batch):  # noqa: ANN001, ANN202
        """Node inputs, velocities, the edge graph, the edge inputs and the stream branches'
        layer-0 inputs (None unless a stream feature branch runs: not once pruned, nor in
        equivariant-only mode)."""
        node, v = self.node_inputs(batch)
        graph = EdgeGraph(batch.edge_index, batch.pos.shape[0])
        edge_attr = self.edge_inputs(batch, graph)
        raw = torch.cat([node, batch.pos, v], dim=-1) if self._stream_branch_active() else None
        return node, v, graph, edge_attr, raw

    def _features(self, i: int) -> bool:
        """Whether layer ``i`` updates the features. With positions out the last layer's feature
        update is never read; it is skipped when that is exact (no batch-norm / spectral-norm
        state it would update in training)."""
        layer = self.layers[i]
        return i < len(self.layers) - 1 or self.readout is not None or (self.training and not _stateless(layer.h))

    def _output(self, h: torch.Tensor, x: torch.Tensor, batch) -> torch.Tensor:  # noqa: ANN001
        if self.readout is None:
            return x
        nodes = batch.batch if getattr(batch, "batch", None) is not None else torch.zeros(
            h.shape[0], dtype=torch.long, device=h.device)
        return self.readout(h, nodes)


def build_egnn(spec: EGNNSpec) -> EGNN:
    """E(n)-equivariant GNN (Satorras et al. 2021): dynamics (velocities) or molecules (atoms)."""
    return EGNN(spec)
