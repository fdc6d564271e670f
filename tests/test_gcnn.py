"""The group CNN (p4 / p4m): exact invariance / equivariance of every head and group, the
image data sets (digits, advection), the classification task and short training runs.

(The registry-parametrized suite in test_equivariance.py covers its default spec in every mode.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import acezoo
from acezoo.archs.gcnn import GCNNSpec
from acezoo.data.advection import AdvectionSpec, build_advection
from acezoo.data.bundle import ClassificationTask
from acezoo.data.digits import DigitsSpec, UprightDigitsSpec, build_digits, load_digit_images
from acezoo.data.images import ImageBatch, ImageTensorDataset
from acezoo.data.specs import DIGIT_IMAGES
from acezoo.paths import data_home
from acezoo.symmetry import equivariance_error, symmetry_for

from conftest import ZOO


def _model(spec: GCNNSpec, mode: str = "equality") -> acezoo.RelaxedModel:
    torch.manual_seed(0)
    return acezoo.compile_model(spec, acezoo.ConstraintBudget(mode=mode, init_gamma=0.5)).double().eval()


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("head", ["classify", "dense"])
@pytest.mark.parametrize("group", ["C4", "D4"])
def test_pruned_gcnn_is_exact_under_the_whole_group(group: str, head: str, kernel: int) -> None:
    spec = GCNNSpec(group=group, head=head, kernel_size=kernel, in_channels=2, out_channels=2, channels=4)
    model = _model(spec)
    sym = symmetry_for(spec)
    x = sym.example_input(torch.Generator().manual_seed(1))
    pruned = model.prune()
    # every group element, one at a time
    for rot in range(4):
        for flip in ([False, True] if group == "D4" else [False]):
            g = type(sym.sample(x, torch.Generator(), rotate=False, reflect=False))(rot, flip)
            lhs, rhs = pruned(sym.act_input(x, g)), sym.act_output(pruned(x), g)
            assert torch.allclose(lhs, rhs, atol=1e-11, rtol=0), (rot, flip, float((lhs - rhs).abs().max()))
    for name in sym.broken_by_branch:
        assert equivariance_error(model, x, sym, torch.Generator().manual_seed(2), **sym.actions[name]) > 1e-4


def test_p4_is_not_flip_invariant() -> None:
    """The test above can fail: a C4 model is not invariant under mirrors."""
    spec = GCNNSpec(group="C4")
    pruned = _model(spec).prune()
    x = symmetry_for(spec).example_input(torch.Generator().manual_seed(1))
    out, flipped = pruned(x), pruned(x.replace(x=torch.flip(x.x, dims=(-1,))))
    assert (out - flipped).abs().max() > 1e-4


def test_gcnn_spec_errors() -> None:
    with pytest.raises(ValidationError, match="kernel_size must be odd"):
        GCNNSpec(kernel_size=4)
    with pytest.raises(ValidationError, match="in_channels == out_channels"):
        GCNNSpec(head="dense", in_channels=1, out_channels=2)
    with pytest.raises(ValidationError, match="group"):
        GCNNSpec(group="C8")


# ----------------------------------------------------------------------------- data
def test_digits_rot_images_are_rotations_of_the_originals() -> None:
    images, labels = load_digit_images()
    spec = DigitsSpec(n_train=50, n_val=10, n_test=10, transform="rot90_flip")
    data = build_digits(spec)
    order = np.random.default_rng(spec.seed).permutation(len(images))[:70]
    originals = np.concatenate([images[order]])
    got = torch.cat([data.train.x, data.val.x, data.test.x])[:, 0].numpy()
    assert (torch.cat([data.train.y, data.val.y, data.test.y]).numpy() == labels[order]).all()
    moved = 0
    for orig, img in zip(originals, got):
        variants = [np.rot90(o, r) for o in (orig, orig[:, ::-1]) for r in range(4)]
        assert any(np.array_equal(v, img) for v in variants)
        moved += not np.array_equal(orig, img)
    assert moved > 40  # most images were transformed (7/8 expected)


def test_digits_upright_and_upsampling() -> None:
    images, _ = load_digit_images()
    data = build_digits(UprightDigitsSpec(n_train=20, n_val=5, n_test=5, upsample=2))
    order = np.random.default_rng(0).permutation(len(images))[:20]
    assert data.train.x.shape == (20, 1, 16, 16)
    assert np.array_equal(data.train.x[:, 0, ::2, ::2].numpy(), images[order])
    assert data.info["symmetric"] is False
    assert len(images) == DIGIT_IMAGES  # the bound the spec checks
    with pytest.raises(ValidationError, match="1700 \\+ 100 \\+ 100 = 1900; allowed: at most the 1797 images"):
        UprightDigitsSpec(n_train=1700, n_val=100, n_test=100)  # rejected with the config, before any data


def test_advection_data_is_cached_and_deterministic() -> None:
    spec = AdvectionSpec(n_train=8, n_val=4, n_test=4, size=9, wind=(1.0, 0.0))
    a, b = build_advection(spec), build_advection(spec)
    assert a.train.x.shape == (8, 1, 9, 9) and a.test.y.shape == (4, 1, 9, 9)
    assert torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.train.x, a.val.x)  # splits use their own seeds
    assert a.info["symmetric"] is False and build_advection(spec.model_copy(update={"wind": (0.0, 0.0)})).info["symmetric"]
    assert list((data_home() / "advection").glob("field_n8_*.npz"))


def test_classification_task_pools_metrics_exactly() -> None:
    task = ClassificationTask()
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    batch = ImageBatch(torch.zeros(3, 1, 3, 3), torch.tensor([0, 0, 0]))
    sums = task.metric_sums(logits, batch)
    assert sums["error"] == (1.0, 3) and sums["accuracy"] == (2.0, 3)
    assert sums["nll"][0] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, batch.y, reduction="sum")))


def test_image_dataset_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="H == W"):
        ImageTensorDataset(torch.zeros(2, 1, 3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="2 images but 3 targets"):
        ImageTensorDataset(torch.zeros(2, 1, 3, 3), torch.zeros(3))


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("config, data", [
    ("gcnn_digits_equality.yaml", ["data.n_train=60", "data.n_val=20", "data.n_test=20"]),
    ("gcnn_advection_resilient.yaml", ["data.n_train=40", "data.n_val=10", "data.n_test=10", "data.size=9"]),
])
def test_gcnn_configs_train_through_the_shared_trainer(tmp_path: Path, config: str, data: list[str]) -> None:
    overrides = ["train.epochs=2", f"train.output_dir={tmp_path}", "train.batch_size=20", "train.progress=false",
                 "train.tracking=false", "model.channels=4", *data]
    result = acezoo.train(acezoo.load_config(ZOO / config, overrides))
    m = result.metrics
    assert m["epochs_run"] == 2 and set(m["gammas"]) == {"lift", "layers.0", "layers.1"}
    assert m["equivariance_error"]["pruned"] < 1e-5 < m["equivariance_error"]["full"]
    if "digits" in config:
        assert set(m["test"]["pruned"]) == {"error", "accuracy", "nll"}
        assert m["test"]["pruned"]["error"] + m["test"]["pruned"]["accuracy"] == pytest.approx(1.0)


@pytest.mark.parametrize("group", ["C4", "D4"])
def test_fused_relaxed_conv_equals_the_sum_of_its_branches(group: str) -> None:
    """``conv(x, W_G + gamma W_b)`` is exactly ``conv_G(x) + gamma * conv(x)``."""
    from acezoo.nn.relaxed import Relaxed

    model = _model(GCNNSpec(group=group, channels=3))
    x = torch.randn(2, 1, 9, 9, dtype=torch.float64)
    f = torch.randn(2, 3, 4 if group == "C4" else 8, 9, 9, dtype=torch.float64)
    for block, inp in ((model.net.lift, x), (model.net.layers[0], f)):
        expected = Relaxed.forward(block, inp)  # the generic eq(x) + gamma * neq(x)
        assert torch.allclose(block(inp), expected, atol=1e-12, rtol=0)
