"""The CMU motion-capture data set (EGNO protocol): splits, items, edges, batching, errors."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from acezoo.data.mocap import ENV_VAR, MocapSpec, SkeletonDataset, build_mocap, bundled_mocap_path, load_mocap
from acezoo.errors import ConfigError
from acezoo.registry import _DATASETS, _load_plugins

MOCAP = bundled_mocap_path()  # shipped with the package (a copy of shared/data/cmu_mocap_run.npz)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmu_mocap_run.npz"


@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    assert MOCAP.is_file(), f"the package must ship {MOCAP}"
    with np.load(MOCAP, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def bundle(raw: dict[str, np.ndarray]):  # noqa: ANN201
    return build_mocap(MocapSpec(path=str(MOCAP)))


def test_registered() -> None:
    _load_plugins()
    assert issubclass(_DATASETS["mocap_run"].spec, MocapSpec)
    builder = _DATASETS["mocap_run"].builder
    assert getattr(builder, "resolve", lambda: builder)() is build_mocap
    assert MocapSpec().dataset == "mocap_run" and MocapSpec().horizon == 30 and MocapSpec().n_train == 200
    with pytest.raises(ValueError):
        MocapSpec(n_train=201)


def test_sizes_shapes_and_no_drops(bundle) -> None:  # noqa: ANN001
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (200, 240, 240)
    assert bundle.info["dropped"] == {"train": 0, "val": 0, "test": 0}
    assert bundle.task.target == "y" and bundle.task.metric == "mse"
    item = bundle.train[0]
    assert isinstance(item, Data)
    for key in ("pos", "vel", "y"):
        assert item[key].shape == (31, 3) and item[key].dtype == torch.float32, key
    assert item.height.shape == (31, 1) and item.height.dtype == torch.float32
    assert "charge" not in item
    assert item.edge_attr.shape == (item.edge_index.shape[1], 1) and item.edge_attr.dtype == torch.float32


def test_samples_follow_the_protocol(bundle, raw) -> None:  # noqa: ANN001
    # train item 41 is the 2nd listed start frame of trial 2 (40 per train trial, trials 1,2,5,6,10)
    for ds, idx, trial, split, j in [
        (bundle.train, 0, 1, "train", 0),
        (bundle.train, 41, 2, "train", 1),
        (bundle.train, 199, 10, "train", 39),
        (bundle.val, 80 + 5, 4, "val", 5),
        (bundle.test, 160 + 79, 8, "test", 79),
    ]:
        x = raw[f"trial_{trial:02d}"]
        s = int(raw[f"split_{split}_trial_{trial:02d}"][j])
        item = ds[idx]
        np.testing.assert_allclose(item.pos.numpy(), x[s], rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(item.vel.numpy(), x[s + 1] - x[s], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(item.y.numpy(), x[s + 30], rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(item.height.numpy()[:, 0], x[s, :, 1] / 10, rtol=1e-6, atol=1e-6)


def test_edges_are_bones_and_two_hop_neighbours(bundle, raw) -> None:  # noqa: ANN001
    bones = {(int(a), int(b)) for a, b in raw["edges"]}
    bones |= {(b, a) for a, b in bones}
    nbrs: dict[int, set[int]] = {i: set() for i in range(31)}
    for a, b in bones:
        nbrs[a].add(b)
    two_hop = {(i, k) for i in range(31) for j in nbrs[i] for k in nbrs[j] if k != i and (i, k) not in bones}
    item = bundle.train[3]
    pairs = [tuple(p) for p in item.edge_index.t().tolist()]
    attrs = item.edge_attr[:, 0].tolist()
    assert len(pairs) == len(set(pairs)) == len(bones) + len(two_hop) == 60 + 70
    assert {p for p, a in zip(pairs, attrs) if a == 1.0} == bones
    assert {p for p, a in zip(pairs, attrs) if a == 2.0} == two_hop
    assert set(attrs) == {1.0, 2.0}


def test_fast_collate_matches_pyg_batching(bundle) -> None:  # noqa: ANN001
    ds = bundle.test
    assert isinstance(ds, SkeletonDataset)
    idx = torch.tensor([5, 0, 239, 17])
    ref = Batch.from_data_list([ds[int(i)] for i in idx])
    fast = ds.collate(idx)
    for key in ("pos", "vel", "y", "height", "edge_index", "edge_attr", "batch", "ptr"):
        assert torch.equal(ref[key], fast[key]), key
    assert fast.num_graphs == 4
    double = ds.to_dtype(torch.float64)
    assert isinstance(double, SkeletonDataset) and double.collate([1, 2]).edge_attr.dtype == torch.float64


def test_smaller_train_set_is_balanced_over_trials(raw) -> None:  # noqa: ANN001
    ds = build_mocap(MocapSpec(path=str(MOCAP), n_train=12)).train
    assert len(ds) == 12  # 3, 3, 2, 2, 2 from trials 1, 2, 5, 6, 10
    s = int(raw["split_train_trial_02"][0])
    np.testing.assert_allclose(ds[3].pos.numpy(), raw["trial_02"][s], atol=1e-5)


def test_path_from_environment(raw, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv(ENV_VAR, str(MOCAP))
    assert len(build_mocap(MocapSpec(n_train=5)).train) == 5


def test_baselines(bundle) -> None:  # noqa: ANN001
    test = bundle.test.collate(range(len(bundle.test)))
    zero = float((test.pos - test.y).pow(2).mean())
    linear = float((test.pos + 30 * test.vel - test.y).pow(2).mean())
    print(f"\nmocap test MSE: zero-motion {zero:.4f}, linear (pos + 30 vel) {linear:.4f}")
    assert math.isfinite(zero) and zero > 0 and math.isfinite(linear) and linear > 0


# --------------------------------------------------------------------------- errors


def test_no_path_and_no_environment_reads_the_shipped_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    shipped, explicit = build_mocap(MocapSpec()), build_mocap(MocapSpec(path=str(MOCAP)))
    assert torch.equal(shipped.test.fields["pos"], explicit.test.fields["pos"])
    assert shipped.info == explicit.info


# SHA-256 of the data file as converted from the EGNO authors' pickles (shared/data/cmu_mocap_run.npz)
MOCAP_SHA256 = "2fc3fce951c112b3a17608c3eda1dd3a034fb8adfe48bcf05541bf4374765bb4"


def test_the_shipped_file_is_the_workspace_data() -> None:
    """The shipped copy is byte for byte the recorded data file (its checksum, in every checkout),
    and the workspace copy where there is one."""
    import hashlib

    assert hashlib.sha256(MOCAP.read_bytes()).hexdigest() == MOCAP_SHA256
    if SHARED.is_file():
        assert MOCAP.read_bytes() == SHARED.read_bytes()


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.npz"
    with pytest.raises(ConfigError, match="not found") as e:
        build_mocap(MocapSpec(path=str(missing)))
    assert e.value.source == str(missing) and str(missing) in str(e.value)
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(ConfigError, match=f"not found.*{ENV_VAR}"):
        build_mocap(MocapSpec())


@pytest.mark.parametrize("content", [b"not an npz at all\n", b"PK\x03\x04 truncated zip", b""])
def test_not_an_npz(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match="not a valid .npz") as e:
        load_mocap(bad)
    assert str(bad) in str(e.value) and "acezoo/data/files/README.md" in str(e.value)


def test_a_single_npy_is_not_an_npz(tmp_path: Path) -> None:
    bad = tmp_path / "one.npy"
    np.save(bad, np.zeros(3))
    with pytest.raises(ConfigError, match="not an .npz"):
        load_mocap(bad)


def _fake(**overrides) -> dict[str, np.ndarray]:  # noqa: ANN003
    rng = np.random.default_rng(0)
    arrays = {"edges": np.stack([np.arange(1, 31), np.arange(30)], axis=1)}
    arrays |= {f"trial_{k:02d}": rng.normal(size=(50, 31, 3)) for k in range(11)}
    for split, ks in {"train": (1, 2, 5, 6, 10), "val": (0, 4, 9), "test": (3, 7, 8)}.items():
        arrays |= {f"split_{split}_trial_{k:02d}": np.arange(10) for k in ks}
    arrays.update(overrides)
    return {k: v for k, v in arrays.items() if v is not None}


def test_fake_file_builds(tmp_path: Path) -> None:
    path = tmp_path / "fake.npz"
    np.savez(path, **_fake(split_val_trial_00=np.array([0, 5, 30])))
    b = build_mocap(MocapSpec(path=str(path)))
    # 50 frames: s + 30 <= 48 keeps s <= 18, so val trial 0 keeps 0 and 5 and drops 30
    assert (len(b.train), len(b.val), len(b.test)) == (50, 22, 30)
    assert b.info["dropped"] == {"train": 0, "val": 1, "test": 0}
    assert b.train[0].edge_index.shape[1] == 60 + 58  # a chain of 31 joints: 29 two-hop pairs


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"edges": None}, "missing arrays edges"),
        ({"trial_03": None, "split_test_trial_08": None}, "missing arrays trial_03, split_test_trial_08"),
        ({"trial_04": np.zeros((50, 30, 3))}, r"array trial_04: expected a \(T, 31, 3\)"),
        ({"trial_04": np.zeros((50, 31))}, r"array trial_04: expected"),
        ({"edges": np.zeros((30, 3), dtype=np.int64)}, r"array edges: expected"),
        ({"edges": np.full((30, 2), 31)}, r"array edges: joint indices"),
        ({"split_val_trial_09": np.zeros((2, 2), dtype=np.int64)}, r"array split_val_trial_09: expected"),
        ({"split_val_trial_09": np.array([-1, 2])}, r"array split_val_trial_09: start frames"),
    ],
)
def test_malformed_arrays(tmp_path: Path, overrides: dict, message: str) -> None:
    path = tmp_path / "broken.npz"
    np.savez(path, **_fake(**overrides))
    with pytest.raises(ConfigError, match=message) as e:
        build_mocap(MocapSpec(path=str(path)))
    text = str(e.value)
    assert str(path) in text and "trial_00..trial_10" in text and "acezoo/data/files/README.md" in text


def test_horizon_beyond_every_trial(tmp_path: Path) -> None:
    path = tmp_path / "fake.npz"
    np.savez(path, **_fake())
    with pytest.raises(ConfigError, match="horizon 60"):
        build_mocap(MocapSpec(path=str(path), horizon=60))


@pytest.mark.parametrize("mode", ["strict", "equality", "resilient"])
def test_zoo_config_trains_on_mocap(raw, tmp_path: Path, mode: str) -> None:  # noqa: ANN001
    import acezoo

    config = acezoo.load_config(
        Path(__file__).resolve().parent.parent / "zoo_configs" / f"egnn_mocap_{mode}.yaml",
        [f"data.path={MOCAP}", "data.n_train=24", "train.epochs=1", "train.progress=false", "train.tracking=false",
         f"train.output_dir={tmp_path}", "model.hidden=16", "model.branch_hidden=16", "model.layers=2"],
    )
    result = acezoo.train(config)
    m = result.metrics
    assert m["test"]["pruned"]["mse"] > 0 and m["equivariance_error"]["pruned"] < 1e-5
    assert (len(m["gammas"]) == 0) == (mode == "strict")
