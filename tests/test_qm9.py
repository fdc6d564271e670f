"""QM9 from the qm9pack CSV files, and the ragged-graph batching it uses."""
from __future__ import annotations

import csv
import importlib.util
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch_geometric.data import Batch

if importlib.util.find_spec("qm9pack") is None:
    pytest.skip("qm9pack is not installed (pip install qm9pack)", allow_module_level=True)

from acezoo import registry  # noqa: E402
from acezoo.data import qm9  # noqa: E402
from acezoo.data.bundle import DataBundle  # noqa: E402
from acezoo.data.ragged_graphs import RaggedGraphDataset  # noqa: E402
from acezoo.errors import AcezooError  # noqa: E402

N_MOLECULES = 130_831  # what qm9pack 1.0.3 ships (QM9's 133,885 minus the 3,054 failed ones)


@pytest.fixture(scope="module")
def loads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Parse into a fresh data home (timed), then load again from the cache (timed).

    A home of its own guarantees that the first load parses, even when ACEZOO_TEST_HOME
    points the session at an existing cache.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACEZOO_HOME", str(tmp_path_factory.mktemp("qm9_home")))
        t0 = time.perf_counter()
        first = qm9.load_qm9_arrays()
        t1 = time.perf_counter()
        second = qm9.load_qm9_arrays()
        t2 = time.perf_counter()
        yield {"arrays": second, "first": first, "t_parse": t1 - t0, "t_cached": t2 - t1}


@pytest.fixture(scope="module")
def arrays(loads: dict) -> dict[str, np.ndarray]:
    return loads["arrays"]


@pytest.fixture(scope="module")
def full(loads: dict) -> DataBundle:
    return qm9.build_qm9(qm9.QM9Spec(target="homo"))


@pytest.fixture(scope="module")
def small(loads: dict) -> DataBundle:
    return qm9.build_qm9(qm9.QM9Spec(subset="qm9_small", target="alpha", graph="radius", polarizability=True))


def _raw_first_row() -> dict[str, str]:
    """Molecule 1 (methane) straight from the CSV file, independently of the parser."""
    with open(qm9.qm9pack_data_dir() / "qm9_part1.csv", newline="") as f:
        return next(csv.DictReader(f))


def _mol_ids(ds: RaggedGraphDataset) -> np.ndarray:
    return ds.graph_fields["mol_id"].numpy()


# --------------------------------------------------------------------------- parsing and cache


def test_parse_counts_and_elements(arrays: dict[str, np.ndarray]) -> None:
    offsets = arrays["node_offsets"]
    n_atoms = np.diff(offsets)
    assert n_atoms.size == N_MOLECULES
    assert (n_atoms.min(), n_atoms.max()) == (3, 29)  # water .. the largest QM9 molecules
    assert offsets[-1] == arrays["z"].size == arrays["pos"].shape[0]
    assert set(np.unique(arrays["z"]).tolist()) == {1, 6, 7, 8, 9}
    ids = arrays["mol_id"]
    assert ids[0] == 1 and ids[-1] == 133_885 and (np.diff(ids) > 0).all()
    for name in qm9.TARGETS:
        assert arrays[name].shape == (N_MOLECULES,) and np.isfinite(arrays[name]).all(), name


def test_methane(arrays: dict[str, np.ndarray]) -> None:
    raw = _raw_first_row()
    assert raw["SMILES"] == "C" and arrays["z"][:5].tolist() == [6, 1, 1, 1, 1]
    assert np.allclose(arrays["pos"][0], [-0.0126981359, 1.0858041578, 0.0080009958])
    homo = qm9.target_values(arrays, "homo")[0]
    assert homo == pytest.approx(float(raw["HOMO_au"]) * 27211.386, rel=1e-7)
    assert qm9.target_values(arrays, "mu")[0] == float(raw["Dipole_debye"])  # unit kept
    u0_atom = qm9.target_values(arrays, "U0", atomization=True)[0]
    free_atoms = qm9.ATOMREF["U0"]["C"] + 4 * qm9.ATOMREF["U0"]["H"]
    assert u0_atom == pytest.approx((float(raw["InternalEnergy_0K_au"]) - free_atoms) * qm9.HARTREE_TO_MEV)


def test_polarizability_tensor(arrays: dict[str, np.ndarray]) -> None:
    a = arrays["alpha_tensor"]
    assert a.shape == (N_MOLECULES, 3, 3) and np.array_equal(a, a.transpose(0, 2, 1))
    assert np.allclose(a[0], 13.211 * np.eye(3))  # methane is isotropic
    assert np.abs(np.trace(a, axis1=1, axis2=2) / 3 - arrays["alpha"]).max() < 0.01


def test_cached_load_is_faster(loads: dict) -> None:
    assert loads["t_cached"] < loads["t_parse"]
    for k, v in loads["first"].items():
        assert np.array_equal(v, loads["arrays"][k]), k


# --------------------------------------------------------------------------- spec and splits


def test_full_splits(full: DataBundle) -> None:
    sizes = [len(full.train), len(full.val), len(full.test)]
    assert sizes == [100_000, 17_748, 13_083]
    ids = [set(_mol_ids(ds).tolist()) for ds in (full.train, full.val, full.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert len(ids[0] | ids[1] | ids[2]) == N_MOLECULES
    train_y = full.train.graph_fields["y"].double()
    assert full.info["unit"] == "meV" and full.info["target"] == "homo"
    assert full.info["mean"] == pytest.approx(float(train_y.mean()), rel=1e-6)
    assert full.info["std"] == pytest.approx(float(train_y.std(unbiased=False)), rel=1e-5)


def test_small_and_nested_splits(full: DataBundle, small: DataBundle) -> None:
    assert [len(small.train), len(small.val), len(small.test)] == [2000, 500, 500]
    for part, whole in ((small.train, full.train), (small.val, full.val), (small.test, full.test)):
        assert set(_mol_ids(part)) <= set(_mol_ids(whole))
    rows = qm9.split_indices(N_MOLECULES, qm9.QM9Spec(n_train=50, n_val=20, n_test=10))
    small_rows = qm9.split_indices(N_MOLECULES, qm9.QM9Spec(subset="qm9_small"))
    assert [len(rows[s]) for s in ("train", "val", "test")] == [50, 20, 10]
    assert set(rows["val"]) <= set(small_rows["val"])  # fixed blocks: val/test do not move
    other = qm9.split_indices(N_MOLECULES, qm9.QM9Spec(subset="qm9_small", split_seed=1))
    assert not np.array_equal(other["test"], small_rows["test"])


def test_spec_rejects_bad_sizes_and_options() -> None:
    with pytest.raises(ValidationError):
        qm9.QM9Spec(n_train=100_001)
    with pytest.raises(ValidationError):
        qm9.QM9Spec(n_test=13_084)
    with pytest.raises(ValidationError):
        qm9.QM9Spec(target="homo", atomization=True)
    with pytest.raises(ValidationError):
        qm9.QM9Spec(target="energy")
    entry = registry.get_dataset("qm9")
    assert entry.spec.model_validate({"dataset": "qm9", "target": "U0"}).target == "U0"


def test_items(small: DataBundle) -> None:
    item = small.train[0]
    n = item.pos.shape[0]
    assert item.pos.dtype == torch.float32 and item.z.dtype == torch.long
    assert item.y.shape == (1, 1) and item.y.dtype == torch.float32
    assert item.alpha_tensor.shape == (1, 3, 3)
    assert item.onehot.shape == (n, 5)
    assert torch.equal(item.onehot.argmax(1), torch.searchsorted(torch.tensor([1, 6, 7, 8, 9]), item.z))
    assert small.info["unit"] == "bohr^3"


# --------------------------------------------------------------------------- batching


def _assert_same_batch(a: Batch, b: Batch) -> None:
    assert set(a.keys()) == set(b.keys())
    for k in b.keys():
        assert torch.equal(a[k], b[k]), k
    assert a.num_graphs == b.num_graphs


@pytest.mark.parametrize("which", ["full", "small"])
def test_collate_equals_from_data_list(which: str, request: pytest.FixtureRequest) -> None:
    ds = request.getfixturevalue(which).val
    idx = torch.tensor([7, 0, 123, 7, 499, 42])
    fast = ds.collate(idx)
    _assert_same_batch(fast, Batch.from_data_list([ds[int(i)] for i in idx]))
    assert fast.y.shape == (6, 1)
    assert fast.get_example(2).pos.shape == ds[123].pos.shape


def test_ragged_subset_and_synthetic_collate() -> None:
    g = torch.Generator().manual_seed(0)
    counts = torch.tensor([1, 4, 2, 6, 3])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    nodes = {"pos": torch.randn(16, 3, generator=g), "h": torch.randn(16, 2, generator=g)}
    graph = {"y": torch.randn(5, 2, generator=g)}
    for edges, radius in (("fully_connected", None), ("radius", 1.2)):
        ds = RaggedGraphDataset(nodes, graph, offsets, edges=edges, radius=radius)
        idx = [3, 0, 4, 1, 3]
        _assert_same_batch(ds.collate(idx), Batch.from_data_list([ds[i] for i in idx]))
        sub = ds.subset(idx)
        assert len(sub) == 5 and torch.equal(sub.num_nodes(), counts[idx])
        _assert_same_batch(sub.collate(range(5)), ds.collate(idx))
    with pytest.raises(ValueError):
        RaggedGraphDataset(nodes, {"mol_index": torch.zeros(5)}, offsets)


def test_radius_graph_stays_inside_molecules(small: DataBundle) -> None:
    batch = small.train.collate(torch.arange(64))
    recv, send = batch.edge_index
    assert torch.equal(batch.batch[recv], batch.batch[send])
    assert bool((recv != send).all())
    dist = (batch.pos[recv] - batch.pos[send]).norm(dim=-1)
    assert float(dist.max()) <= 5.0 + 1e-5
    n = batch.ptr.diff()
    assert 0 < recv.numel() <= int((n * (n - 1)).sum())


def test_fully_connected_edge_count(full: DataBundle) -> None:
    batch = full.test.collate(torch.arange(32))
    n = batch.ptr.diff()
    assert batch.edge_index.shape[1] == int((n * (n - 1)).sum())


# --------------------------------------------------------------------------- task


def test_mae_task_in_target_unit(full: DataBundle) -> None:
    task = full.task
    assert isinstance(task, qm9.MAERegressionTask) and task.metric == "mae"
    batch = full.val.collate(torch.arange(10))
    exact = (batch.y.double() - task.mean) / task.std
    assert task.metric_sums(exact, batch)["mae"][0] == pytest.approx(0.0, abs=1e-6)
    off = exact.float() + 0.5  # half a standard deviation too high
    total, count = task.metric_sums(off, batch)["mae"]
    assert count == 10 and total / count == pytest.approx(0.5 * task.std, rel=1e-4)  # meV
    assert float(task.loss(off, batch)) == pytest.approx(0.5, rel=1e-4)
    assert float(task.loss(off.reshape(-1), batch)) == pytest.approx(0.5, rel=1e-4)
    assert qm9.build_qm9(qm9.QM9Spec(subset="qm9_small", loss="mse")).task.loss_kind == "mse"
    squared = qm9.MAERegressionTask(mean=task.mean, std=task.std, loss_kind="mse")
    assert float(squared.loss(off, batch)) == pytest.approx(0.25, rel=1e-4)


# --------------------------------------------------------------------------- missing package


def test_missing_package_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_found(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    with monkeypatch.context() as m:
        m.setattr(qm9.util, "find_spec", lambda name, *a: None)
        m.setattr(qm9.metadata, "distribution", not_found)
        assert qm9._package_roots() == []
    monkeypatch.setattr(qm9, "_package_roots", lambda: [Path("/nonexistent/qm9pack")])
    with pytest.raises(AcezooError, match=r"needs the qm9pack package: pip install 'acezoo\[qm9\]'"):
        qm9.build_qm9(qm9.QM9Spec(subset="qm9_small"))


# --------------------------------------------------------------------------- the tensor target


def _sample(arrays: dict[str, np.ndarray], n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``n`` random molecules: z, pos, offsets and their raw tensors."""
    rows = np.sort(np.random.default_rng(seed).choice(arrays["mol_id"].size, n, replace=False))
    offsets = arrays["node_offsets"]
    atoms = np.concatenate([np.arange(offsets[m], offsets[m + 1]) for m in rows])
    counts = offsets[rows + 1] - offsets[rows]
    return arrays["z"][atoms], arrays["pos"][atoms], np.concatenate([[0], np.cumsum(counts)]), arrays["alpha_tensor"][rows]


def _traceless_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    eye = np.eye(3)
    a = a - np.trace(a, axis1=1, axis2=2)[:, None, None] / 3 * eye
    b = b - np.trace(b, axis1=1, axis2=2)[:, None, None] / 3 * eye
    return (a * b).sum((1, 2)) / np.linalg.norm(a, axis=(1, 2)) / np.linalg.norm(b, axis=(1, 2))


def test_reconstructed_frames_rotate_with_the_molecule(arrays: dict[str, np.ndarray]) -> None:
    """Q(R r) = Q(r) R^T, so A_pos = Q^T A Q becomes R A_pos R^T when the molecule rotates."""
    from acezoo.data.qm9_frames import standard_orientations, tensors_in_pos_frame
    from acezoo.symmetry import random_orthogonal

    z, pos, offsets, tensors = _sample(arrays, 500)
    axes, gap = standard_orientations(z, pos, offsets)
    assert np.allclose(axes @ axes.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(axes), 1.0)
    rot = random_orthogonal(torch.Generator().manual_seed(0), torch.float64, reflect=False).numpy()
    axes_rot, gap_rot = standard_orientations(z, pos @ rot.T, offsets)
    assert np.allclose(gap, gap_rot)
    a_pos, a_rot = tensors_in_pos_frame(tensors, axes), tensors_in_pos_frame(tensors, axes_rot)
    err = np.abs(a_rot - rot @ a_pos @ rot.T).max(axis=(1, 2))
    ok = gap >= 1e-2
    assert (err[ok] < 1e-6).mean() > 0.99, np.sort(err[ok])[-10:]


def test_reconstructed_tensors_align_with_the_geometry(arrays: dict[str, np.ndarray]) -> None:
    """The anisotropy of A_pos follows the molecule's shape (the gyration tensor of its atoms);
    the tensors as shipped (in their own frame) do not."""
    from acezoo.data.qm9_frames import standard_orientations, tensors_in_pos_frame

    z, pos, offsets, tensors = _sample(arrays, 2000, seed=1)
    counts = np.diff(offsets)
    centred = pos - np.repeat(np.add.reduceat(pos, offsets[:-1]) / counts[:, None], counts, axis=0)
    gyration = np.add.reduceat(centred[:, :, None] * centred[:, None, :], offsets[:-1])
    axes, gap = standard_orientations(z, pos, offsets)
    ok = (gap >= 1e-2) & (np.linalg.norm(tensors - np.trace(tensors, axis1=1, axis2=2)[:, None, None] / 3 * np.eye(3),
                                         axis=(1, 2)) > 1e-3)
    reconstructed = _traceless_cosine(tensors_in_pos_frame(tensors, axes)[ok], gyration[ok])
    shipped = _traceless_cosine(tensors[ok], gyration[ok])
    assert reconstructed.mean() > 0.8 and np.median(reconstructed) > 0.85, reconstructed.mean()
    assert abs(shipped.mean()) < 0.2, shipped.mean()


def test_tensor_target_bundle_and_task() -> None:
    bundle = qm9.build_qm9(qm9.QM9Spec(subset="qm9_small", target="alpha_tensor", n_train=200, n_val=50, n_test=50))
    task = bundle.task
    assert isinstance(task, qm9.TensorMAETask) and bundle.info["unit"] == "bohr^3"
    left = bundle.info["left_out"]
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (200 - left["train"], 50 - left["val"],
                                                                        50 - left["test"])
    batch = bundle.val.collate(torch.arange(8))
    y = batch.y.double()
    assert y.shape == (8, 3, 3) and torch.allclose(y, y.transpose(1, 2))
    eye = torch.eye(3, dtype=torch.float64)
    exact = (y - task.mean * eye) / task.std
    assert task.metric_sums(exact, batch)["mae"][0] == pytest.approx(0.0, abs=1e-4)
    off = exact + 0.5 * eye / 3 ** 0.5  # Frobenius distance 0.5 on the scaled tensors
    total, count = task.metric_sums(off, batch)["mae"]
    assert count == 72 and total / count == pytest.approx(0.5 / 3 ** 0.5 * task.std / 3, rel=1e-4)
    assert float(task.loss(off.float(), batch)) == pytest.approx(0.5, rel=1e-4)
    with pytest.raises(ValueError, match="prediction of shape"):
        task.loss(exact[:, 0], batch)
    squared = qm9.TensorMAETask(mean=task.mean, std=task.std, loss_kind="mse")
    assert float(squared.loss(off.float(), batch)) == pytest.approx(0.25 / 9, rel=1e-4)
    # the trace is invariant under the reconstruction: it is still the isotropic polarizability
    scalar = qm9.build_qm9(qm9.QM9Spec(subset="qm9_small", target="alpha", n_train=200, n_val=50, n_test=50))
    alpha = dict(zip(scalar.val.graph_fields["mol_id"].tolist(), scalar.val.graph_fields["y"][:, 0].tolist()))
    for mol, tensor in zip(batch.mol_id.tolist(), y):
        assert float(torch.trace(tensor)) / 3 == pytest.approx(alpha[mol], abs=0.01)


def test_tensor_head_learns_the_polarizability(tmp_path: Path) -> None:
    """A small SE(3)-Transformer with the 0e + 2e head, trained briefly through the shared
    trainer, beats predicting the training mean and stays equivariant."""
    import acezoo

    overrides = ["train.epochs=12", f"train.output_dir={tmp_path}", "train.progress=false", "train.tracking=false",
                 "data.n_train=96", "data.n_val=48", "data.n_test=48", "model.channels=[4,4,4]", "model.heads=2",
                 "model.layers=1", "train.lr=3e-3", "train.batch_size=16"]
    config = acezoo.load_config(Path(__file__).parents[1] / "zoo_configs" / "se3t_qm9_polar_strict.yaml", overrides)
    result = acezoo.train(config)
    m = result.metrics
    bundle = qm9.build_qm9(config.data)
    y = bundle.test.graph_fields["y"].double()
    mean_tensor = bundle.task.mean * torch.eye(3, dtype=torch.float64)
    baseline = float((y - mean_tensor).abs().mean())  # predict mu * I for every molecule
    assert m["test"]["pruned"]["mae"] < 0.9 * baseline, (m["test"]["pruned"]["mae"], baseline)
    assert m["equivariance_error"]["pruned"] < 1e-5


def test_egnn_qm9_config_trains_on_qm9_small(tmp_path: Path) -> None:
    """The EGNN molecule mode (one-hot atoms, fixed positions, graph read-out) through the trainer."""
    import acezoo

    overrides = ["train.epochs=1", f"train.output_dir={tmp_path}", "train.progress=false", "train.tracking=false",
                 "data.n_train=64", "data.n_val=32", "data.n_test=32", "model.hidden=16", "model.branch_hidden=16",
                 "model.layers=2"]
    result = acezoo.train(acezoo.load_config(Path(__file__).parents[1] / "zoo_configs" / "egnn_qm9_equality.yaml",
                                             overrides))
    m = result.metrics
    assert set(m["gammas"]) == {"layers.0.h", "layers.1.h"}  # no coordinate blocks: positions stay fixed
    assert m["unit"] == "meV"
    assert "| model | mae (meV) |" in (result.run_dir / "README.md").read_text()
    assert set(m["test"]["pruned"]) == {"mae"} and m["test"]["pruned"]["mae"] > 0
    assert m["equivariance_error"]["pruned"] < 1e-5 < m["equivariance_error"]["full"]


def test_cli_prepare_reports_sizes_and_cache_time(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from acezoo.cli import main

    qm9.load_qm9_arrays()  # the cache exists now: prepare must report a load, not a build
    try:
        code = main(["prepare", "se3t_qm9_strict", "--no-progress", "data.n_train=50", "data.n_val=20",
                     "data.n_test=10"])
    finally:
        logging.getLogger("acezoo.data").handlers.clear()
    out, err = capsys.readouterr()
    assert code == 0
    assert "qm9: train / val / test = 50 / 20 / 10 samples, built in" in out
    assert "qm9: loaded the cache" in err and " s" in err
