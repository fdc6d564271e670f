"""The N-body data set: items, batching, caching, the external-field variant."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from acezoo.data import nbody
from acezoo.data.nbody import NBodySpec, build_nbody, load_split
from acezoo.paths import data_home


def small(**kw) -> NBodySpec:  # noqa: ANN003
    return NBodySpec(n_train=40, n_val=10, n_test=10, **kw)


def test_items_are_pyg_data_with_the_documented_fields() -> None:
    bundle = build_nbody(small())
    item = bundle.train[0]
    assert isinstance(item, Data)
    assert item.pos.shape == (5, 3) and item.vel.shape == (5, 3) and item.y.shape == (5, 3)
    assert item.charge.shape == (5, 1) and set(item.charge.flatten().tolist()) <= {-1.0, 1.0}
    assert item.edge_index.shape == (2, 20)
    assert len(bundle.train) == 40 and len(bundle.val) == 10 and len(bundle.test) == 10


def test_fast_collate_matches_pyg_batching() -> None:
    ds = build_nbody(small()).train
    idx = torch.tensor([3, 0, 7, 11])
    ref = Batch.from_data_list([ds[int(i)] for i in idx])
    fast = ds.collate(idx)
    for key in ("pos", "vel", "charge", "y", "edge_index", "batch", "ptr"):
        assert torch.equal(ref[key], fast[key]), key
    assert fast.num_graphs == 4


def test_splits_differ_and_cache_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = small(seed=5)
    first = {s: load_split(spec, s) for s in ("train", "val", "test")}
    assert not np.array_equal(first["train"]["pos_in"][:10], first["val"]["pos_in"])
    files = sorted((data_home() / "nbody").glob("*.npz"))
    assert files, "the simulation must be cached under the data home"
    def no_simulation(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a cached split must not be simulated again")

    monkeypatch.setattr(nbody, "simulate", no_simulation)
    again = load_split(spec, "train")
    assert all(np.array_equal(again[k], first["train"][k]) for k in again)
    assert sorted((data_home() / "nbody").glob("*.npz")) == files  # no new file
    assert not list((data_home() / "nbody").glob("*.tmp*"))  # nothing half-written


def test_field_variant_changes_the_dynamics() -> None:
    plain = load_split(small(seed=2), "train")
    field = load_split(small(seed=2, field_strength=2.0, field_direction=(1.0, 0.0, 0.0)), "train")
    assert np.array_equal(plain["charge"], field["charge"])  # same initial draws ...
    assert not np.allclose(plain["pos_out"], field["pos_out"])  # ... different dynamics


def test_field_spec_normalises_direction() -> None:
    params = small(field_strength=3.0, field_direction=(0.0, 4.0, 3.0)).params()
    assert np.allclose(params.field, (0.0, 2.4, 1.8))


# --------------------------------------------------------------------------- the EGNN authors' draw


def test_egnn_small_draw_replays_the_authors_generator_calls() -> None:
    """The first training simulation of ``draw: egnn_small`` is what generate_dataset.py --seed 43
    draws first: charges by choice (5 uniforms), positions randn(3, 5), directions randn(3, 5)
    scaled to speed 0.5; the second comes after the two zero-noise draws randn(49, 3, 5)."""
    from acezoo.data.nbody_egnn_draw import egnn_small_initial_conditions

    rs = np.random.RandomState(43)
    expected = []
    for _ in range(2):
        charge = np.where(rs.random_sample((5, 1)) < 0.5, -1.0, 1.0)
        loc, vel = rs.randn(3, 5), rs.randn(3, 5)
        expected.append((loc.T, 0.5 * vel.T / np.linalg.norm(vel.T, axis=1, keepdims=True), charge))
        rs.randn(49 * 3 * 5 * 2)
    pos0, vel0, charge = egnn_small_initial_conditions("train", 2)
    for k, (p, v, q) in enumerate(expected):
        assert np.array_equal(pos0[k], p) and np.allclose(vel0[k], v, rtol=0, atol=1e-15) and np.array_equal(charge[k], q)
    val = egnn_small_initial_conditions("val", 1)[0]
    assert not np.array_equal(val[0], pos0[0])
    with pytest.raises(ValueError, match="2000 simulations"):
        egnn_small_initial_conditions("test", 2001)


def test_egnn_small_draw_builds_its_own_cached_split() -> None:
    from acezoo.data.nbody_egnn_draw import egnn_small_initial_conditions
    from acezoo.data.nbody_sim import integrate

    spec = small(draw="egnn_small", frame_in=31, frame_out=41)
    split = load_split(spec, "val")
    traj = integrate(*egnn_small_initial_conditions("val", 10), frames=(31, 41))
    assert np.array_equal(split["pos_in"], traj.pos[:, 0]) and np.array_equal(split["pos_out"], traj.pos[:, 1])
    assert not np.array_equal(split["pos_in"], load_split(small(frame_in=31, frame_out=41), "val")["pos_in"])
    assert list((data_home() / "nbody").glob("charged_egnn_small_n10_*"))


@pytest.mark.parametrize("kw, message", [({"n_train": 10_001}, "n_train .10001. exceeds the 10000 train"),
                                        ({"seed": 1}, "leave seed at 0")])
def test_egnn_small_draw_rejects_what_it_cannot_give(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NBodySpec(draw="egnn_small", **kw)
