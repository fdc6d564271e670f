"""The optimised EGNN layer against the straightforward formulation of the same maths.

``acezoo.archs.egnn`` evaluates the first linear map of ``phi_e`` per node, reads the edges
through an :class:`EdgeGraph` (an ``(nodes, degree, ...)`` layout when the receivers are
sorted with one in-degree, index gathers and ``index_add`` otherwise) and skips a last layer's
unread feature update. The reference below is the plain formulation: concatenate
``[h_i, h_j, |d_ij|^2, a_ij]`` per edge, run ``phi_e`` on it, aggregate with a dense incidence
matrix. Both must agree (outputs and gradients, float32, 1e-5) in every input mode, on regular
and irregular graphs, and the pretrained checkpoints must load into the optimised model.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch_geometric.data import Batch, Data

import acezoo
from acezoo.archs.egnn import EGNN, EdgeGraph, EGNNSpec
from acezoo.data.graphs import fully_connected_edge_index
from acezoo.data.tensor_graphs import GraphTensorDataset
from acezoo.hub.models import pretrained_dir
from acezoo.nn.relaxed import Relaxed
from acezoo.training import checkpoint as ckpt

TOL = dict(atol=5e-5, rtol=1e-4)  # float32 sums in another order (threads, node-wise first layer)


# -- the straightforward formulation ------------------------------------------------------------
def _aggregate(src: torch.Tensor, row: torch.Tensor, n: int, reduce: str) -> torch.Tensor:
    """Sum / mean of ``src`` over the edges of each receiver, through a dense incidence matrix."""
    incidence = torch.nn.functional.one_hot(row, n).T.to(src.dtype)  # (n, E)
    total = incidence @ src
    return total if reduce == "sum" else total / incidence.sum(1, keepdim=True).clamp(min=1)


def _relaxed(block, eq_out, h, x, v):  # noqa: ANN001, ANN202
    if not isinstance(block, Relaxed) or block.equivariant_only:
        return eq_out
    return eq_out + block.gamma * block.neq.mlp(torch.cat([h, x, v], dim=-1))


def reference_layer(layer, h, x, v, edge_index, edge_attr):  # noqa: ANN001, ANN201
    """One EGNN layer as the module docstring writes it, with the layer's own parameters."""
    row, col = edge_index
    n = h.shape[0]
    diff = x[row] - x[col]
    radial = (diff ** 2).sum(-1, keepdim=True)
    parts = [h[row], h[col], radial] + ([edge_attr] if edge_attr is not None else [])
    m = layer.phi_e(torch.cat(parts, dim=-1))
    if layer.gate is not None:
        m = m * layer.gate(m)
    x_new = x
    if layer.x is not None:
        eq = layer.x.eq if isinstance(layer.x, Relaxed) else layer.x
        trans = diff * eq.phi_x(m)
        if eq.clamp is not None:  # the norm cap, written out: t * min(1, c / |t|)
            norm = trans.norm(dim=-1, keepdim=True)
            trans = trans * torch.minimum(torch.ones_like(norm), eq.clamp / norm)
        upd = _aggregate(trans, row, n, eq.agg)
        if eq.phi_v is not None:
            upd = upd + eq.phi_v(h) * v
        x_new = x + _relaxed(layer.x, upd, h, x, v)
    eq = layer.h.eq if isinstance(layer.h, Relaxed) else layer.h
    h_new = h + _relaxed(layer.h, eq.phi_h(torch.cat([h, _aggregate(m, row, n, "sum")], dim=-1)), h, x, v)
    return h_new, x_new


def reference_forward(net: EGNN, batch) -> torch.Tensor:  # noqa: ANN001
    """The whole EGNN (every layer's feature update computed, as before the optimisation)."""
    node, v = net.node_inputs(batch)
    row, col = batch.edge_index
    edge_attr = {"charge_product": lambda: batch.charge[row] * batch.charge[col],
                 "edge_attr": lambda: batch.edge_attr, "none": lambda: None}[net.spec.edge_input]()
    if net.spec.initial_distance:  # the EGNN authors' N-body edge input: [q_i q_j, |x_i^0 - x_j^0|^2]
        dist0 = ((batch.pos[row] - batch.pos[col]) ** 2).sum(-1, keepdim=True)
        edge_attr = dist0 if edge_attr is None else torch.cat([edge_attr, dist0], dim=-1)
    h, x = net.embed(node), batch.pos
    for layer in net.layers:
        h, x = reference_layer(layer, h, x, v, batch.edge_index, edge_attr)
    if net.readout is None:
        return x
    return net.readout(h, batch.batch)


# -- inputs ---------------------------------------------------------------------------------------
def _fields(gen: torch.Generator, graphs: int, nodes: int, atoms: int | None = None) -> dict[str, torch.Tensor]:
    if atoms is not None:
        kinds = torch.randint(0, atoms, (graphs, nodes), generator=gen)
        return {"pos": 1.5 * torch.randn(graphs, nodes, 3, generator=gen),
                "onehot": torch.nn.functional.one_hot(kinds, atoms).float()}
    return {"pos": torch.randn(graphs, nodes, 3, generator=gen), "vel": torch.randn(graphs, nodes, 3, generator=gen),
            "charge": torch.randint(0, 2, (graphs, nodes, 1), generator=gen).float() * 2 - 1,
            "y": torch.randn(graphs, nodes, 3, generator=gen)}


def fully_connected_batch(seed: int = 0, graphs: int = 6, nodes: int = 5, atoms: int | None = None) -> Batch:
    """A PyG batch of fully connected graphs of one size (the regular edge layout applies)."""
    gen = torch.Generator().manual_seed(seed)
    return GraphTensorDataset(_fields(gen, graphs, nodes, atoms), fully_connected_edge_index(nodes)).collate(
        range(graphs))


def irregular_batch(seed: int = 0, atoms: int | None = None, edge_dim: int = 0) -> Batch:
    """Graphs of different sizes with random directed edges (isolated receivers included)."""
    gen = torch.Generator().manual_seed(seed)
    items = []
    for size in (4, 7, 6):
        f = {k: t[0] for k, t in _fields(gen, 1, size, atoms).items()}
        full = fully_connected_edge_index(size)
        keep = torch.rand(full.shape[1], generator=gen) < 0.5
        keep &= full[0] != 0  # node 0 receives nothing
        ei = full[:, keep]
        ei = ei[:, torch.randperm(ei.shape[1], generator=gen)]  # unsorted receivers
        if edge_dim:
            f["edge_attr"] = torch.randn(ei.shape[1], edge_dim, generator=gen)
        items.append(Data(edge_index=ei, **f))
    return Batch.from_data_list(items)


def ring_batch(seed: int = 0, graphs: int = 3, nodes: int = 6, edge_dim: int = 0) -> Batch:
    """Each node receives from its two ring neighbours: sorted receivers of in-degree 2, not
    fully connected (the regular layout applies, with arbitrary senders)."""
    gen = torch.Generator().manual_seed(seed)
    i = torch.arange(nodes).repeat_interleave(2)
    j = torch.stack([(torch.arange(nodes) - 1) % nodes, (torch.arange(nodes) + 1) % nodes], 1).reshape(-1)
    items = []
    for _ in range(graphs):
        f = {k: t[0] for k, t in _fields(gen, 1, nodes).items()}
        if edge_dim:
            f["edge_attr"] = torch.randn(2 * nodes, edge_dim, generator=gen)
        items.append(Data(edge_index=torch.stack([i, j]), **f))
    return Batch.from_data_list(items)


def shuffled(batch: Batch, seed: int = 1) -> Batch:
    """The same graphs with the edges in a random order (the general layout)."""
    out = batch.clone()
    perm = torch.randperm(batch.edge_index.shape[1], generator=torch.Generator().manual_seed(seed))
    out.edge_index = batch.edge_index[:, perm]
    if getattr(batch, "edge_attr", None) is not None:
        out.edge_attr = batch.edge_attr[perm]
    return out


def build(seed: int = 0, mode: str = "equality", **spec) -> acezoo.RelaxedModel:  # noqa: ANN003
    torch.manual_seed(seed)
    model = acezoo.compile_model(EGNNSpec(hidden=16, branch_hidden=12, layers=3, **spec),
                                 acezoo.ConstraintBudget(mode=mode, init_gamma=0.7))
    with torch.no_grad():  # non-trivial biases, gate and velocity terms
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


def assert_matches_reference(model: acezoo.RelaxedModel, batch: Batch) -> None:
    """Outputs and parameter gradients of the optimised forward equal the reference's (run on
    a copy, so that buffers a training pass updates, e.g. spectral-norm vectors, start equal)."""
    twin = copy.deepcopy(model)
    out = model(batch)
    model.zero_grad()
    (out.pow(2).sum() + out.sum()).backward()
    ref_out = reference_forward(twin.net, batch)
    twin.zero_grad()
    (ref_out.pow(2).sum() + ref_out.sum()).backward()
    torch.testing.assert_close(out, ref_out, **TOL)
    for (name, _), a, b in zip(model.named_parameters(), _grads(model), _grads(twin)):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, name=name: f"gradient of {name}: {m}")


# -- the tests ------------------------------------------------------------------------------------
CASES = {
    "dynamics, charge_product": dict(),
    "dynamics, charge feature, sum aggregation": dict(charge_feature=True, coord_agg="sum"),
    "dynamics, edge_attr": dict(edge_input="edge_attr", edge_dim=2),
    "dynamics, no edge input, edge gate": dict(edge_input="none", edge_gate=True),
    "dynamics, charge_product and initial distance": dict(initial_distance=True),
    "dynamics, coordinate messages capped": dict(coord_clamp=1e-4),
    "dynamics, edge_attr and initial distance": dict(edge_input="edge_attr", edge_dim=2, initial_distance=True),
    "molecule, initial distance only": dict(node_input="atoms", edge_input="none", output="graph",
                                            coord_updates=False, initial_distance=True),
    "molecule": dict(node_input="atoms", edge_input="none", output="graph", coord_updates=False, edge_gate=True),
    "molecule with coordinates, edge_attr": dict(node_input="atoms", edge_input="edge_attr", edge_dim=1,
                                                 output="graph", pool="mean", out_channels=2),
}


def _batch_for(spec: dict, kind: str) -> Batch:
    atoms = 5 if spec.get("node_input") == "atoms" else None
    edge_dim = spec.get("edge_dim", 1) if spec.get("edge_input") == "edge_attr" else 0
    if kind == "fully connected":
        batch = fully_connected_batch(atoms=atoms)
        if edge_dim:
            gen = torch.Generator().manual_seed(3)
            batch.edge_attr = torch.randn(batch.edge_index.shape[1], edge_dim, generator=gen)
        return batch
    if kind == "shuffled fully connected":
        return shuffled(_batch_for(spec, "fully connected"))
    if kind == "ring":
        if atoms is not None:
            b = ring_batch(edge_dim=edge_dim)
            kinds = torch.randint(0, atoms, (b.num_nodes,), generator=torch.Generator().manual_seed(4))
            return Batch.from_data_list([Data(pos=d.pos, onehot=torch.nn.functional.one_hot(
                kinds[: d.num_nodes], atoms).float(), edge_index=d.edge_index,
                **({"edge_attr": d.edge_attr} if edge_dim else {})) for d in b.to_data_list()])
        return ring_batch(edge_dim=edge_dim)
    return irregular_batch(atoms=atoms, edge_dim=edge_dim)


@pytest.mark.parametrize("kind", ["fully connected", "shuffled fully connected", "ring", "irregular"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("equivariant_only", [False, True])
def test_optimised_layer_equals_the_straightforward_formulation(case: str, kind: str, equivariant_only: bool) -> None:
    spec = CASES[case]
    model = build(**spec).train()
    batch = _batch_for(spec, kind)
    with model.equivariant_only(equivariant_only):
        assert_matches_reference(model, batch)


@pytest.mark.parametrize("case", list(CASES))
def test_one_layer_on_its_own(case: str) -> None:
    """``EGNNLayer.forward`` without a prebuilt graph returns the reference's ``(h, x)``."""
    spec = CASES[case]
    net = build(**spec).net
    for kind in ("fully connected", "irregular"):
        batch = _batch_for(spec, kind)
        node, v = net.node_inputs(batch)
        h, x = net.embed(node), batch.pos
        edge_attr = net.edge_inputs(batch)
        for got, want in zip(net.layers[0](h, x, v, batch.edge_index, edge_attr),
                             reference_layer(net.layers[0], h, x, v, batch.edge_index, edge_attr)):
            torch.testing.assert_close(got, want, **TOL)


def test_strict_model_and_the_bounded_branch() -> None:
    for spec, mode in ((dict(), "strict"), (dict(branch="bounded"), "equality")):
        model = build(mode=mode, **spec)
        for batch in (fully_connected_batch(), irregular_batch()):
            for train in (True, False):
                model.train(train)
                assert_matches_reference(model, batch)


def test_skipping_the_last_feature_update_leaves_the_state_as_it_was() -> None:
    """With a bounded branch (batch norm and spectral norm buffers) a training forward pass
    updates exactly the buffers the reference updates (the last feature update runs); in eval
    mode, and with plain branches, it is skipped."""
    model = build(branch="bounded").train()
    twin = copy.deepcopy(model)
    batch = fully_connected_batch()
    with torch.no_grad():
        model(batch)
        reference_forward(twin.net, batch)
    for (name, a), b in zip(model.named_buffers(), twin.buffers()):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, name=name: f"{name}: {m}")
    tracked = dict(model.named_buffers())["net.layers.2.h.neq.mlp.0.num_batches_tracked"]
    assert int(tracked) == 1  # the last layer's feature branch ran
    model.eval()
    with torch.no_grad():
        model(batch)  # eval mode: the unread update is skipped, nothing to update anyway
    assert int(tracked) == 1


def test_regular_layout_is_detected_exactly() -> None:
    fc = fully_connected_batch(graphs=4, nodes=5)
    assert EdgeGraph(fc.edge_index, fc.num_nodes).degree == 4
    assert EdgeGraph(ring_batch().edge_index, 18).degree == 2
    assert not EdgeGraph(shuffled(fc).edge_index, fc.num_nodes).regular
    irregular = irregular_batch()
    assert not EdgeGraph(irregular.edge_index, irregular.num_nodes).regular
    # receivers sorted and as many edges as nodes x 4, but one node receives 5 and another 3
    ei = fc.edge_index.clone()
    ei[0, 3] = 1
    assert not EdgeGraph(ei, fc.num_nodes).regular
    assert not EdgeGraph(torch.empty(2, 0, dtype=torch.long), 3).regular
    assert not EdgeGraph(fc.edge_index, 0).regular
    # a graph whose edges do not cover a trailing node
    assert not EdgeGraph(fc.edge_index, fc.num_nodes + 1).regular


def test_regular_and_general_layouts_agree() -> None:
    gen = torch.Generator().manual_seed(0)
    for batch in (fully_connected_batch(graphs=5, nodes=6), ring_batch()):
        n, ei = batch.num_nodes, batch.edge_index
        fast, general = EdgeGraph(ei, n), EdgeGraph(ei, n, detect_regular=False)
        assert fast.regular and not general.regular
        t = torch.randn(n, 7, generator=gen)
        e = torch.randn(ei.shape[1], 7, generator=gen)
        for op in ("senders", "differences"):
            torch.testing.assert_close(fast.flat(getattr(fast, op)(t)), getattr(general, op)(t))
        for op in ("add_receivers", "mul_receivers"):
            torch.testing.assert_close(fast.flat(getattr(fast, op)(fast.edges(e), t)), getattr(general, op)(e, t))
        torch.testing.assert_close(fast.flat(fast.add_receivers_(fast.edges(e.clone()), t)),
                                   general.add_receivers_(e.clone(), t))
        for reduce in ("sum", "mean"):
            torch.testing.assert_close(fast.aggregate(fast.edges(e), reduce), general.aggregate(e, reduce))
            torch.testing.assert_close(general.aggregate(e, reduce), _aggregate(e, ei[0], n, reduce))
    with pytest.raises(ValueError, match="allowed: sum, mean"):
        EdgeGraph(ei, n).aggregate(e, "max")


def test_a_bare_receiver_vector_still_works_in_the_update_blocks() -> None:
    """The blocks' last argument used to be ``row``; passing it still aggregates correctly."""
    net = build().net
    layer = net.layers[0]
    batch = irregular_batch()
    row, col = batch.edge_index
    n = batch.num_nodes
    m = torch.randn(row.numel(), 16)
    diff = batch.pos[row] - batch.pos[col]
    h = torch.randn(n, 16)
    got = layer.h.eq(h, batch.pos, batch.vel, m, diff, row)
    want = layer.h.eq.phi_h(torch.cat([h, _aggregate(m, row, n, "sum")], dim=-1))
    torch.testing.assert_close(got, want)
    got = layer.x.eq(h, batch.pos, batch.vel, m, diff, row)
    want = _aggregate(diff * layer.x.eq.phi_x(m), row, n, "mean") + layer.x.eq.phi_v(h) * batch.vel
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", ["egnn-nbody-ace", "egnn-nbody-strict", "egnn-nbody-field-resilient"])
def test_pretrained_checkpoints_load_and_match_the_reference(name: str) -> None:
    """Checkpoints written before the optimisation load strictly (same state_dict keys and
    shapes) and give the reference formulation's outputs."""
    folder = pretrained_dir() / name
    config, model = ckpt.load_run(folder)  # strict: missing / extra / mis-shaped tensors raise
    from safetensors.torch import load_file

    assert set(load_file(str(folder / ckpt.WEIGHTS_FILE))) == set(model.state_dict())
    model.eval()
    batch = fully_connected_batch(graphs=8)
    with torch.no_grad():
        torch.testing.assert_close(model(batch), reference_forward(model.net, batch), **TOL)
        with model.equivariant_only():
            torch.testing.assert_close(model(batch), reference_forward(model.net, batch), **TOL)


def test_state_dict_keys_are_those_of_the_original_layout() -> None:
    """The parameter names of every mode are the module paths of the original layer."""
    keys = set(acezoo.compile_model(EGNNSpec(layers=1, edge_gate=True)).state_dict())
    expected = {"net.embed.weight", "net.embed.bias"}
    for p in ("phi_e.0", "phi_e.2", "gate.0", "x.eq.phi_x.0", "x.eq.phi_v.0", "x.eq.phi_v.2", "h.eq.phi_h.0",
              "h.eq.phi_h.2", "x.neq.mlp.0", "x.neq.mlp.2", "h.neq.mlp.0", "h.neq.mlp.2"):
        expected |= {f"net.layers.0.{p}.weight", f"net.layers.0.{p}.bias"}
    expected |= {"net.layers.0.x.eq.phi_x.2.weight", "net.layers.0.x.gamma", "net.layers.0.h.gamma"}
    assert keys == expected


@pytest.mark.parametrize("entry", ["forward", "forward_both"])
@pytest.mark.parametrize("kind", ["fully connected", "irregular"])
def test_torch_compile_traces_the_forward_in_one_piece_after_the_layout_check(kind: str, entry: str) -> None:
    """``train.compile`` traces the whole forward pass (and the one-pass validation of both
    models, which the trainer compiles too): the only graph break is the exact check of the
    regular layout (a data-dependent bool, run eagerly; none where the edge count already rules
    it out); the general layout's mean has none (it counts with ``index_add``, not ``bincount``,
    whose output size depends on the data)."""
    model = build(0, "equality").train()
    if entry == "forward_both":
        model.eval()
    batch = fully_connected_batch() if kind == "fully connected" else irregular_batch()
    torch._dynamo.reset()
    try:
        explanation = torch._dynamo.explain(model if entry == "forward" else model.net.forward_both)(batch)
    finally:
        torch._dynamo.reset()
    # dynamo reports the one break once per enclosing frame it tried (forward, EdgeGraph.__init__);
    # `_regular_degree` wraps the check in `torch.compiler.disable` when traced (not at import)
    where = [(b.user_stack[-1].name, str(b.reason)) for b in explanation.break_reasons]
    assert all(name in ("__init__", "_regular_degree") and "disable" in reason for name, reason in where), where
    if kind == "fully connected":
        assert where  # the check ran here (eagerly, under `torch.compiler.disable`)


# -- one validation pass for both forms ------------------------------------------------------------
@pytest.mark.parametrize("branch", ["plain", "bounded", "stream"])
@pytest.mark.parametrize("kind", ["fully connected", "irregular"])
@pytest.mark.parametrize("case", list(CASES))
def test_forward_both_equals_the_two_separate_passes(case: str, kind: str, branch: str) -> None:
    """``forward_both`` (the inputs and the first layer's equivariant part shared) gives the
    equivariant-only and the full outputs of two separate eval-mode passes, bit for bit."""
    spec = dict(CASES[case], branch=branch)
    model = build(**spec).eval()
    batch = _batch_for(spec, kind)
    with torch.no_grad():
        with model.equivariant_only():
            eq = model(batch)
        full = model(batch)
        got_eq, got_full = model.forward_both(batch)
    assert not torch.equal(eq, full)  # the branches are live: the two forms differ
    assert torch.equal(got_eq, eq)
    assert torch.equal(got_full, full)


@pytest.mark.parametrize("layers", [1, 3])
def test_forward_both_with_some_blocks_pruned(layers: int) -> None:
    """Blocks already in equivariant-only mode (pruned) stay so in the full output; one layer works."""
    model = acezoo.compile_model(EGNNSpec(hidden=16, branch_hidden=12, layers=layers),
                                 acezoo.ConstraintBudget(mode="equality", init_gamma=0.7)).eval()
    model.relaxed_blocks()["layers.0.h"].equivariant_only = True
    batch = fully_connected_batch()
    with torch.no_grad():
        with model.equivariant_only():
            eq = model(batch)
        full = model(batch)
        got_eq, got_full = model.forward_both(batch)
    assert torch.equal(got_eq, eq) and torch.equal(got_full, full)
    assert not torch.equal(eq, full)
    assert model.relaxed_blocks()["layers.0.h"].equivariant_only  # flags untouched
    assert not model.relaxed_blocks()["layers.0.x"].equivariant_only


def test_relaxed_model_forward_both_falls_back_to_two_passes() -> None:
    """A network without its own ``forward_both`` gets two passes with the same meaning."""
    model = build().eval()
    batch = fully_connected_batch()
    with torch.no_grad():
        want = model.forward_both(batch)
        model.net.forward_both = None  # an architecture without the one-pass method
        assert not model.has_forward_both
        got = model.forward_both(batch)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
