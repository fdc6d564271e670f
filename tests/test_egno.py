"""EGNO and the EGNO MoCap protocol: output shapes, the K-frame targets and the last-frame metric,
the temporal Fourier convolution, the configs, and a short training run on the real data.

The registry-wide symmetry tests (tests/test_equivariance.py) cover EGNO's pruned / full models
through its registered examples.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import acezoo
from acezoo.archs.egno import EGNO, CoordTimeConv, FeatureTimeConv
from acezoo.archs.specs import EGNOSpec
from acezoo.data.bundle import RegressionTask, TrajectoryTask
from acezoo.data.mocap import MocapSpec, build_mocap, bundled_mocap_path
from acezoo.errors import ConfigError
from acezoo.nn.relaxed import Relaxed
from acezoo.nn.temporal import SpectralTimeConv, time_embedding
from acezoo.symmetry import random_orthogonal

MOCAP = bundled_mocap_path()
ZOO = Path(__file__).resolve().parent.parent / "zoo_configs"


@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    with np.load(MOCAP, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def five() -> acezoo.data.DataBundle:
    return build_mocap(MocapSpec(path=str(MOCAP), frames=5))


def _mocap_spec(**fields) -> EGNOSpec:  # noqa: ANN003
    return EGNOSpec(hidden=16, layers=2, edge_input="edge_attr", node_features=["height"], **fields)


# --------------------------------------------------------------------------- the network


@pytest.mark.parametrize(("frames", "modes", "shape"), [(5, 2, (5, 3)), (1, 1, (3,)), (4, 3, (4, 3))])
def test_output_shapes_on_a_mocap_batch(five, frames: int, modes: int, shape: tuple) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    model = acezoo.compile_model(_mocap_spec(frames=frames, modes=modes)).eval()
    batch = five.train.collate(range(3))
    out = model(batch)
    assert out.shape == (3 * 31, *shape)
    assert torch.isfinite(out).all()
    if frames > 1:  # the frames differ (time embedding and temporal convolution at work)
        assert (out[:, 0] - out[:, -1]).abs().max() > 1e-6


def test_gammas_sit_on_the_egnn_updates_two_per_layer() -> None:
    model = acezoo.compile_model(_mocap_spec())
    assert sorted(model.named_gammas()) == ["layers.0.h", "layers.0.x", "layers.1.h", "layers.1.x"]


def test_frames_of_one_sample_do_not_depend_on_the_batch(five) -> None:  # noqa: ANN001
    """Per-graph centroids: a sample's prediction is the same alone or batched (unlike the
    authors' batch-max height scaling)."""
    torch.manual_seed(0)
    model = acezoo.compile_model(_mocap_spec()).eval()
    with torch.no_grad():
        alone = model(five.val.collate([7]))
        batched = model(five.val.collate([3, 7, 11]))[31:62]
    torch.testing.assert_close(alone, batched, rtol=0, atol=1e-5)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="modes \\(2\\) exceeds the 1 temporal Fourier mode"):
        EGNOSpec(frames=1)
    with pytest.raises(ValueError, match="modes \\(4\\) exceeds the 3"):
        EGNOSpec(frames=5, modes=4)
    assert EGNOSpec().branch_width == 128 and EGNOSpec(branch_hidden=8).branch_width == 8
    with pytest.raises(ValueError, match="frames \\(31\\) must be at most horizon \\(30\\)"):
        MocapSpec(frames=31)


# --------------------------------------------------------------------------- the temporal convolution


def test_coordinate_time_conv_is_e3_equivariant() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    conv = CoordTimeConv(modes=2).double()
    x = torch.randn(6, 5, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(6, 5, 3, generator=gen, dtype=torch.float64)
    c = x[:, 0].mean(0, keepdim=True).unsqueeze(1)
    x1, v1 = conv(x, v, c)
    assert (x1 - x).abs().max() > 1e-3 and (v1 - v).abs().max() > 1e-3  # it does something
    for reflect in (False, True):
        r = random_orthogonal(gen, torch.float64, reflect)
        t = 3 * torch.randn(3, generator=gen, dtype=torch.float64)
        x2, v2 = conv(x @ r.T + t, v @ r.T, c @ r.T + t)
        torch.testing.assert_close(x2, x1 @ r.T + t, rtol=0, atol=1e-12)
        torch.testing.assert_close(v2, v1 @ r.T, rtol=0, atol=1e-12)
    # a translation of the positions alone (without the centroid) is not a symmetry: the centring matters
    x3, _ = conv(x + 1.0, v, c)
    assert (x3 - (x1 + 1.0)).abs().max() > 1e-6


def test_feature_time_conv_acts_per_node() -> None:
    torch.manual_seed(0)
    conv = FeatureTimeConv(8, modes=2).double()
    h = torch.randn(7, 5, 8, dtype=torch.float64)
    perm = torch.randperm(7)
    torch.testing.assert_close(conv(h[perm]), conv(h)[perm], rtol=0, atol=1e-13)


def test_spectral_conv_is_a_circular_convolution_of_the_lowest_modes() -> None:
    torch.manual_seed(0)
    conv = SpectralTimeConv(3, 2, modes=2).double()
    u = torch.randn(4, 6, 3, dtype=torch.float64)
    # commutes with circular shifts in time (a convolution)
    torch.testing.assert_close(conv(torch.roll(u, 2, dims=1)), torch.roll(conv(u), 2, dims=1), rtol=0, atol=1e-12)
    # linear
    torch.testing.assert_close(conv(2 * u + u.flip(0)), 2 * conv(u) + conv(u.flip(0)), rtol=0, atol=1e-12)
    # a mode above the kept ones (k = 3 of K = 6, the Nyquist mode) is filtered out
    k = torch.arange(6, dtype=torch.float64)
    high = torch.cos(torch.pi * k).view(1, 6, 1).expand(4, 6, 3)
    assert conv(high).abs().max() < 1e-12
    # the spatial axes between time and channels are left alone
    vec = torch.randn(4, 6, 3, 3, dtype=torch.float64)
    r = random_orthogonal(torch.Generator().manual_seed(3), torch.float64)
    spatial = SpectralTimeConv(3, 3, modes=3).double()
    rotated = torch.einsum("ij,bkjc->bkic", r, vec)
    torch.testing.assert_close(spatial(rotated), torch.einsum("ij,bkjc->bkic", r, spatial(vec)), rtol=0, atol=1e-12)


def test_time_embedding() -> None:
    emb = time_embedding(5, 32)
    assert emb.shape == (5, 32)
    torch.testing.assert_close(emb[0], torch.cat([torch.zeros(16), torch.ones(16)]))
    assert torch.allclose(emb[1, 0], torch.sin(torch.tensor(1.0)))
    assert time_embedding(3, 7)[:, -1].abs().max() == 0 and time_embedding(3, 0).shape == (3, 0)


# --------------------------------------------------------------------------- the data protocol


def test_k_frames_are_the_last_frames_up_to_the_horizon(five, raw) -> None:  # noqa: ANN001
    assert (len(five.train), len(five.val), len(five.test)) == (200, 240, 240)
    assert five.info["target_offsets"] == [26, 27, 28, 29, 30] and five.info["frames"] == 5
    assert isinstance(five.task, TrajectoryTask) and five.task.metric == "mse"
    for ds, idx, trial, split, j in [(five.train, 41, 2, "train", 1), (five.val, 80 + 5, 4, "val", 5),
                                     (five.test, 239, 8, "test", 79)]:
        s = int(raw[f"split_{split}_trial_{trial:02d}"][j])
        item = ds[idx]
        assert item.y.shape == (31, 5, 3)
        np.testing.assert_allclose(item.pos.numpy(), raw[f"trial_{trial:02d}"][s], atol=1e-5)
        for k in range(5):
            np.testing.assert_allclose(item.y[:, k].numpy(), raw[f"trial_{trial:02d}"][s + 26 + k], atol=1e-5)
    batch = five.train.collate(range(4))
    assert batch.y.shape == (4 * 31, 5, 3)


def test_one_frame_reproduces_the_existing_protocol(five) -> None:  # noqa: ANN001
    default, one = build_mocap(MocapSpec(path=str(MOCAP))), build_mocap(MocapSpec(path=str(MOCAP), frames=1))
    assert isinstance(default.task, RegressionTask) and isinstance(one.task, RegressionTask)
    for split in ("train", "val", "test"):
        a, b, k5 = getattr(default, split), getattr(one, split), getattr(five, split)
        assert set(a.fields) == set(b.fields) == set(k5.fields)
        for key in a.fields:
            torch.testing.assert_close(a.fields[key], b.fields[key], rtol=0, atol=0)
        assert a.fields["y"].shape[1:] == (31, 3)
        torch.testing.assert_close(k5.fields["y"][:, :, -1], a.fields["y"], rtol=0, atol=0)  # the last frame
        torch.testing.assert_close(k5.fields["pos"], a.fields["pos"], rtol=0, atol=0)


def test_loss_is_over_all_frames_and_the_metric_on_the_last(five) -> None:  # noqa: ANN001
    batch = five.val.collate(range(5))
    pred = batch.y.clone()
    pred[:, :-1] += 1.0  # every frame but the last off by 1 in each component
    task = five.task
    assert float(task.loss(pred, batch)) == pytest.approx(4 / 5)
    sums = task.metric_sums(pred, batch)
    assert sums["mse"] == (0.0, 5 * 31 * 3)
    assert sums["mse_all_frames"][0] == pytest.approx(5 * 31 * 4 * 3) and sums["mse_all_frames"][1] == 5 * 31 * 5 * 3
    pred[:, -1] += 2.0
    assert task.metric_sums(pred, batch)["mse"][0] == pytest.approx(4 * 5 * 31 * 3)
    with pytest.raises(ValueError, match="as many frames"):
        task.loss(pred[:, -1], batch)


# --------------------------------------------------------------------------- configs and training


def test_strict_config_compiles_without_gammas_and_relaxed_ones_with_twelve() -> None:
    strict = acezoo.compile_model(acezoo.load_config(ZOO / "egno_mocap_strict.yaml"))
    assert strict.named_gammas() == {}
    assert not any(isinstance(m, Relaxed) for m in strict.modules())
    assert isinstance(strict.net, EGNO) and strict.net.spec.frames == 5 and strict.net.spec.hidden == 128
    for mode in ("equality", "resilient"):
        config = acezoo.load_config(ZOO / f"egno_mocap_{mode}.yaml")
        assert config.data.frames == config.model.frames == 5 and config.train.batch_size == 12
        assert len(acezoo.compile_model(config).named_gammas()) == 12


def test_model_and_data_frames_must_agree() -> None:
    with pytest.raises(ConfigError, match="model.frames \\(5\\) must equal data.frames \\(1"):
        acezoo.load_config(ZOO / "egno_mocap_strict.yaml", ["data.frames=1"])
    with pytest.raises(ValueError, match="model.frames \\(5\\) must equal data.frames \\(1, the data set"):
        acezoo.ZooConfig.model_validate({"name": "x", "model": {"arch": "egno"}, "data": {"dataset": "nbody_charged"}})
    config = acezoo.ZooConfig.model_validate({"name": "x", "model": {"arch": "egno", "frames": 1, "modes": 1},
                                              "data": {"dataset": "nbody_charged"}})
    assert config.model.frames == 1


def test_tiny_training_run_on_mocap_improves_the_loss(five, tmp_path: Path) -> None:  # noqa: ANN001
    config = acezoo.load_config(
        ZOO / "egno_mocap_resilient.yaml",
        [f"data.path={MOCAP}", "data.n_train=24", "train.epochs=4", "train.eval_every=2", "train.progress=false",
         "train.tracking=false", f"train.output_dir={tmp_path}", "train.lr=5e-3", "train.batch_size=4",
         "model.hidden=16", "model.layers=2", "model.time_embedding=8", "train.num_threads=1"],
    )
    result = acezoo.train(config)
    m = result.metrics
    assert m["test"]["pruned"]["mse"] > 0 and m["test"]["full"]["mse_all_frames"] > 0
    assert m["equivariance_error"]["pruned"] < 1e-5 and m["equivariance_error"]["full"] > 1e-3
    assert len(m["gammas"]) == 4
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < 0.5 * losses[0], losses
    test = five.test.collate(range(len(five.test)))
    zero_motion = float((test.pos - test.y[:, -1]).pow(2).mean())  # about 90
    assert m["test"]["pruned"]["mse"] < 0.5 * zero_motion
