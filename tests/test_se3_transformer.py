"""The SE(3)-Transformer: e3nn's own equivariance utilities on its layers and heads, the
plain-torch graph builders, spec validation and a short training run.

(The registry-parametrized suite in test_equivariance.py covers it in every constraint mode too.)
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant
from pydantic import ValidationError

import acezoo
from acezoo.archs.se3_transformer import SE3Transformer, SE3TransformerSpec
from acezoo.data.graphs import batch_fully_connected_edge_index, knn_edge_index, radius_edge_index
from acezoo.nn.irreps import EquivariantLayerNorm, degree_irreps

from conftest import ZOO

GRAPHS, NODES = 3, 6


@pytest.fixture(autouse=True)
def _float64_default():
    """e3nn builds its constants in the default dtype: float64 gives float64-exact equivariance."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _batch(pos: torch.Tensor, vel: torch.Tensor, charge: torch.Tensor) -> SimpleNamespace:
    batch = torch.arange(GRAPHS).repeat_interleave(NODES)
    return SimpleNamespace(pos=pos, vel=vel, charge=charge, batch=batch,
                           edge_index=batch_fully_connected_edge_index(batch))


def _model(**spec) -> SE3Transformer:
    torch.manual_seed(0)
    spec.setdefault("channels", 8)
    compiled = acezoo.compile_model(SE3TransformerSpec(heads=2, layers=2, **spec),
                                    acezoo.ConstraintBudget(mode="equality", init_gamma=0.5))
    return compiled.prune().eval()


CHARGE = (torch.randint(0, 2, (GRAPHS * NODES, 1), generator=torch.Generator().manual_seed(0)) * 2 - 1).double()


@pytest.mark.parametrize("max_degree, channels", [(1, 8), (2, 8), (3, 8), (2, [16, 8, 4])])
def test_layer_rotates_every_irreps_feature(max_degree: int, channels) -> None:  # noqa: ANN001
    """One pruned layer ``(h, x, v) -> h'`` under random rotations (and parity) of every irreps
    block of ``h``, of ``v`` (1o) and of the points ``x`` (rotated and translated)."""
    model = _model(max_degree=max_degree, channels=channels)
    layer = model.layers[0]

    def f(h: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        batch = _batch(x, v, CHARGE)
        edge_index, sh, radial = model.geometry(batch)
        return layer(h, x, v, edge_index, sh, radial)

    irreps = model.irreps
    args = [irreps.randn(GRAPHS * NODES, -1), torch.randn(GRAPHS * NODES, 3), torch.randn(GRAPHS * NODES, 3)]
    errors = assert_equivariant(f, args_in=args, irreps_in=[irreps, "cartesian_points", o3.Irreps("1o")],
                                irreps_out=[irreps], tolerance=1e-10)
    assert max(float(e) for e in errors.values()) < 1e-10


@pytest.mark.parametrize(
    "output, irreps_out",
    [("position", "cartesian_points"), ("vector", o3.Irreps("1o")), ("invariant", o3.Irreps("3x0e"))],
)
@pytest.mark.parametrize("graph", ["fully_connected", "radius", "knn"])
def test_model_heads_are_equivariant(output: str, irreps_out, graph: str) -> None:
    model = _model(output=output, out_channels=3, graph=graph, radius=1.5, k=3, max_degree=2)

    def f(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return model(_batch(x, v, CHARGE))

    args = [torch.randn(GRAPHS * NODES, 3), torch.randn(GRAPHS * NODES, 3)]
    assert_equivariant(f, args_in=args, irreps_in=["cartesian_points", o3.Irreps("1o")],
                       irreps_out=[irreps_out], tolerance=1e-10)


def test_invariant_head_is_permutation_equivariant() -> None:
    model = _model(output="invariant", out_channels=2, graph="knn", k=3)
    x, v = torch.randn(GRAPHS * NODES, 3), torch.randn(GRAPHS * NODES, 3)
    perm = torch.cat([g * NODES + torch.randperm(NODES) for g in range(GRAPHS)])
    out = model(_batch(x, v, CHARGE))
    out_perm = model(_batch(x[perm], v[perm], CHARGE[perm]))
    assert torch.allclose(out[perm], out_perm, atol=1e-12)


def test_unpruned_model_breaks_rotation_symmetry() -> None:
    torch.manual_seed(0)
    net = acezoo.compile_model(SE3TransformerSpec(channels=8, heads=2, layers=2),
                               acezoo.ConstraintBudget(mode="equality", init_gamma=0.5))
    x, v = torch.randn(GRAPHS * NODES, 3), torch.randn(GRAPHS * NODES, 3)
    rot = o3.rand_matrix()
    lhs = net(_batch(x @ rot.T, v @ rot.T, CHARGE))
    rhs = net(_batch(x, v, CHARGE)) @ rot.T
    assert (lhs - rhs).abs().max() > 1e-4


def test_layer_norm_is_equivariant_and_normalises() -> None:
    irreps = degree_irreps([4, 4, 4])
    norm = EquivariantLayerNorm(irreps)
    x = irreps.randn(10, -1) * 7.0 + 3.0
    assert_equivariant(norm, args_in=[x], irreps_in=[irreps], irreps_out=[irreps], tolerance=1e-10)
    y = norm(x)
    assert torch.allclose(y[:, :4].mean(dim=1), torch.zeros(10), atol=1e-10)  # scalars centred
    assert torch.allclose(y[:, 4:16].pow(2).mean(dim=1), torch.ones(10), atol=1e-4)  # 1o unit RMS


# ----------------------------------------------------------------------------- graph builders
def _brute_force(pos: torch.Tensor, batch: torch.Tensor, keep) -> set[tuple[int, int]]:  # noqa: ANN001
    edges = set()
    for i in range(len(pos)):
        others = [j for j in range(len(pos)) if j != i and batch[j] == batch[i]]
        dist = {j: float((pos[i] - pos[j]).norm()) for j in others}
        edges |= {(i, j) for j in keep(dist)}
    return edges


def _as_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.T.tolist()))


@pytest.fixture
def ragged() -> tuple[torch.Tensor, torch.Tensor]:
    """Three graphs of 4, 1 and 7 nodes."""
    batch = torch.tensor([0] * 4 + [1] + [2] * 7)
    return torch.randn(12, 3, generator=torch.Generator().manual_seed(0)), batch


def test_fully_connected_edges_stay_inside_each_graph(ragged) -> None:  # noqa: ANN001
    pos, batch = ragged
    edges = batch_fully_connected_edge_index(batch)
    assert edges.shape[1] == 4 * 3 + 0 + 7 * 6
    assert _as_set(edges) == _brute_force(pos, batch, lambda d: d.keys())


def test_radius_edges_match_brute_force(ragged) -> None:  # noqa: ANN001
    pos, batch = ragged
    assert _as_set(radius_edge_index(pos, batch, 1.5)) == _brute_force(
        pos, batch, lambda d: [j for j, r in d.items() if r <= 1.5])


@pytest.mark.parametrize("k", [1, 3, 10])
def test_knn_edges_match_brute_force(ragged, k: int) -> None:  # noqa: ANN001
    pos, batch = ragged
    assert _as_set(knn_edge_index(pos, batch, k)) == _brute_force(
        pos, batch, lambda d: sorted(d, key=d.get)[:k])


def test_builders_reject_bad_arguments(ragged) -> None:  # noqa: ANN001
    pos, batch = ragged
    with pytest.raises(ValueError, match="radius must be > 0"):
        radius_edge_index(pos, batch, 0.0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        knn_edge_index(pos, batch, 0)
    with pytest.raises(ValueError, match="contiguous"):
        batch_fully_connected_edge_index(torch.tensor([0, 1, 0]))


# ----------------------------------------------------------------------------- spec and training
def test_spec_errors_say_what_is_allowed() -> None:
    with pytest.raises(ValidationError, match=r"channels \(6\) must be a positive multiple of heads \(4\)"):
        SE3TransformerSpec(channels=6, heads=4)
    with pytest.raises(ValidationError, match="expected 3 numbers, got 2"):
        SE3TransformerSpec(channels=[8, 4], max_degree=2)
    with pytest.raises(ValidationError, match="needs graph `data`"):
        SE3TransformerSpec(edge_input="edge_attr", graph="knn")


def test_se3t_nbody_config_trains_through_the_shared_trainer(tmp_path: Path) -> None:
    torch.set_default_dtype(torch.float32)
    overrides = ["train.epochs=2", f"train.output_dir={tmp_path}", "train.batch_size=20", "train.progress=false",
                 "train.tracking=false", "data.n_train=40", "data.n_val=20", "data.n_test=20",
                 "model.channels=8", "model.heads=2", "model.layers=1"]
    result = acezoo.train(acezoo.load_config(ZOO / "se3t_nbody_equality.yaml", overrides))
    assert result.metrics["epochs_run"] == 2
    assert set(result.metrics["gammas"]) == {"layers.0.update"}
    assert result.metrics["equivariance_error"]["pruned"] < 1e-5
    assert result.metrics["test"]["pruned"]["mse"] < 10.0


def test_graph_head_on_molecules_is_invariant() -> None:
    """`node_input: atoms`, `output: graph`: one value per molecule, invariant under rotations,
    reflections, translations (e3nn) and atom permutations."""
    torch.manual_seed(0)
    spec = SE3TransformerSpec(node_input="atoms", edge_input="none", output="graph", out_channels=2,
                              channels=8, heads=2, layers=2, max_degree=2, graph="radius", radius=2.5)
    model = acezoo.compile_model(spec, acezoo.ConstraintBudget(mode="equality", init_gamma=0.5)).prune().eval()
    onehot = torch.nn.functional.one_hot(torch.randint(0, 5, (GRAPHS * NODES,)), 5).double()
    batch = torch.arange(GRAPHS).repeat_interleave(NODES)

    def f(x: torch.Tensor) -> torch.Tensor:
        return model(SimpleNamespace(pos=x, onehot=onehot, batch=batch))

    x = torch.randn(GRAPHS * NODES, 3)
    assert f(x).shape == (GRAPHS, 2)
    assert_equivariant(f, args_in=[x], irreps_in=["cartesian_points"], irreps_out=[o3.Irreps("2x0e")],
                       tolerance=1e-10)
    perm = torch.cat([g * NODES + torch.randperm(NODES) for g in range(GRAPHS)])
    permuted = model(SimpleNamespace(pos=x[perm], onehot=onehot[perm], batch=batch))
    assert torch.allclose(f(x), permuted, atol=1e-12)
    with pytest.raises(ValidationError, match="node_input `atoms` has no charges"):
        SE3TransformerSpec(node_input="atoms")


def test_se3t_qm9_config_trains_on_qm9_small(tmp_path: Path) -> None:
    from importlib.util import find_spec

    if find_spec("qm9pack") is None:
        pytest.skip("qm9pack is not installed (pip install 'acezoo[qm9]')")
    torch.set_default_dtype(torch.float32)
    overrides = ["train.epochs=1", f"train.output_dir={tmp_path}", "train.progress=false", "train.tracking=false",
                 "data.n_train=64", "data.n_val=32", "data.n_test=32", "model.channels=8", "model.heads=2",
                 "model.layers=1"]
    result = acezoo.train(acezoo.load_config(ZOO / "se3t_qm9_equality.yaml", overrides))
    m = result.metrics
    assert set(m["test"]["pruned"]) == {"mae"} and m["test"]["pruned"]["mae"] > 0
    assert m["equivariance_error"]["pruned"] < 1e-5 < m["equivariance_error"]["full"]
