"""``acezoo eval --perturb noise=SIGMA``: noisy inputs, untouched targets, seeding, batching, CLI errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import acezoo
from acezoo.cli import main
from acezoo.data.bundle import DataBundle
from acezoo.data.images import ImageTensorDataset
from acezoo.data.mocap import SkeletonDataset
from acezoo.data.ragged_graphs import RaggedGraphDataset
from acezoo.data.tensor_graphs import GraphTensorDataset
from acezoo.training.checkpoint import load_run
from acezoo.training.perturb import perturb_dataset, score_perturbed
from acezoo.training.trainer import build_data

from conftest import ZOO, tiny_overrides

DIGITS = ["train.batch_size=20", "train.progress=false", "train.tracking=false", "model.channels=4",
          "data.n_train=40", "data.n_val=20", "data.n_test=20"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One-epoch runs: EGNN on N-body (point clouds) and a group CNN on rotated digits (images)."""
    out = tmp_path_factory.mktemp("perturb_runs")
    nbody = acezoo.load_config(ZOO / "egnn_nbody_equality.yaml", tiny_overrides(out, epochs=1, n=20))
    digits = acezoo.load_config(ZOO / "gcnn_digits_equality.yaml",
                                ["train.epochs=1", f"train.output_dir={out}", *DIGITS])
    return {"nbody": acezoo.train(nbody).run_dir, "digits": acezoo.train(digits).run_dir}


def _data(run_dir: Path) -> DataBundle:
    config, _ = load_run(run_dir)
    return build_data(config)


def _inputs(ds: object) -> dict[str, torch.Tensor]:
    if isinstance(ds, ImageTensorDataset):
        return {"x": ds.x}
    assert isinstance(ds, GraphTensorDataset)
    return {k: ds.fields[k] for k in ("pos", "vel")}


def _targets(ds: object) -> dict[str, torch.Tensor]:
    if isinstance(ds, ImageTensorDataset):
        return {"y": ds.y}
    assert isinstance(ds, GraphTensorDataset)
    return {"y": ds.fields["y"], "charge": ds.fields["charge"], "edge_index": ds.edge_index}


@pytest.mark.parametrize("kind", ["nbody", "digits"])
def test_noise_zero_is_the_unperturbed_result_and_noise_changes_it(runs: dict[str, Path], kind: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(runs[kind]), "--perturb", "noise=0", "--perturb", "noise=0.05", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    zero, noisy = out["perturbed"]
    assert (zero["noise"], zero["seed"], noisy["noise"]) == (0.0, 0, 0.05)
    assert zero["pruned"] == out["test"]["pruned"] and zero["full"] == out["test"]["full"]
    metric = "mse" if kind == "nbody" else "nll"
    assert noisy["pruned"][metric] != zero["pruned"][metric] and noisy["full"][metric] != zero["full"][metric]


@pytest.mark.parametrize("kind", ["nbody", "digits"])
def test_noise_changes_inputs_but_not_targets(runs: dict[str, Path], kind: str) -> None:
    clean = _data(runs[kind]).test
    before = {k: t.clone() for k, t in _inputs(clean).items()}
    noisy = perturb_dataset(clean, 0.1, seed=0)
    assert type(noisy) is type(clean) and len(noisy) == len(clean)
    for k, t in _inputs(noisy).items():
        assert t.shape == before[k].shape and bool((t != before[k]).all()), k
        assert 0.05 < float((t - before[k]).std()) < 0.2, k
        assert torch.equal(_inputs(clean)[k], before[k]), f"{k}: the original data set was changed"
    for k, t in _targets(noisy).items():
        assert torch.equal(t, _targets(clean)[k]), k


@pytest.mark.parametrize("kind", ["nbody", "digits"])
def test_same_seed_same_noise_other_seed_other_noise(runs: dict[str, Path], kind: str) -> None:
    clean = _data(runs[kind]).test
    a, b, c = (_inputs(perturb_dataset(clean, 0.05, seed=s)) for s in (7, 7, 8))
    for k in a:
        assert torch.equal(a[k], b[k]), k
        assert not torch.equal(a[k], c[k]), k


@pytest.mark.parametrize("kind", ["nbody", "digits"])
def test_result_does_not_depend_on_the_batch_size(runs: dict[str, Path], kind: str) -> None:
    small, large = (score_perturbed(runs[kind], [0.05, 0.2], "test", seed=1, batch_size=bs) for bs in (3, 500))
    for s, l in zip(small["perturbed"], large["perturbed"]):
        for part in ("pruned", "full"):
            assert s[part] == pytest.approx(l[part], rel=1e-5, abs=1e-7)


def test_score_perturbed_takes_a_loaded_model(runs: dict[str, Path]) -> None:
    config, model = load_run(runs["nbody"])
    by_model = score_perturbed(model, [0.05], "val", seed=2, data=build_data(config))
    by_dir = score_perturbed(runs["nbody"], [0.05], "val", seed=2, device="cpu")
    assert by_model == by_dir and by_model["split"] == "val"


def test_text_output_prints_the_unperturbed_result_first(runs: dict[str, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(runs["nbody"]), "--perturb", "noise=0.01", "--perturb", "noise=0.05",
                 "--perturb-seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("test mse: pruned (equivariant) ")
    assert lines[-2].startswith("perturbed noise=0.01: test mse: pruned (equivariant) ")
    assert lines[-1].startswith("perturbed noise=0.05: test mse: pruned (equivariant) ")
    assert " | full (with gamma) " in lines[-1]


@pytest.mark.parametrize("args, message", [
    (["--perturb", "noise=abc"], "error: --perturb 'noise=abc': 'abc' is not a number; allowed: noise=SIGMA"),
    (["--perturb", "noise=-1"], "error: --perturb 'noise=-1': SIGMA -1 is negative; allowed: noise=SIGMA"),
    (["--perturb", "foo=1"], "error: --perturb 'foo=1': unknown perturbation 'foo'; allowed: noise=SIGMA"),
    (["--perturb", "noise=0.1", "--perturb", "noise"], "error: --perturb 'noise': expected KEY=VALUE; allowed:"),
    (["--perturb", "noise=nan"], "error: --perturb 'noise=nan': SIGMA nan is not finite; allowed: noise=SIGMA"),
    (["--perturb", "noise=1", "--perturb-seed", "-1"], "error: --perturb-seed -1: must be an integer >= 0"),
])
def test_bad_perturbations_exit_2_with_one_line(runs: dict[str, Path], args: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(runs["nbody"]), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(message) and captured.err.count("\n") == 1


def test_molecules_and_skeletons_perturb_their_coordinates_only() -> None:
    """QM9-like ragged graphs (``pos`` only) and MoCap-like skeletons (``height`` follows ``pos``)."""
    gen = torch.Generator().manual_seed(0)
    molecules = RaggedGraphDataset(
        {"pos": torch.randn(7, 3, generator=gen), "z": torch.tensor([1, 6, 1, 8, 1, 1, 6])},
        {"y": torch.randn(2, 1, generator=gen)}, torch.tensor([0, 3, 7]), edges="radius", radius=1.5)
    noisy = perturb_dataset(molecules, 0.1, seed=0)
    assert isinstance(noisy, RaggedGraphDataset)
    assert not torch.equal(noisy.node_fields["pos"], molecules.node_fields["pos"])
    assert torch.equal(noisy.node_fields["z"], molecules.node_fields["z"])
    assert torch.equal(noisy.graph_fields["y"], molecules.graph_fields["y"])
    assert torch.equal(noisy.collate([0, 1]).pos, noisy.node_fields["pos"])  # edges come from the noisy pos

    pos = torch.randn(4, 3, 3, generator=gen)
    fields = {"pos": pos, "vel": torch.randn(4, 3, 3, generator=gen), "y": pos + 1, "height": pos[..., 1:2] / 10}
    skeletons = SkeletonDataset(fields, torch.tensor([[0, 1], [1, 2]]), torch.ones(2, 1))
    noisy_sk = perturb_dataset(skeletons, 0.1, seed=0)
    assert isinstance(noisy_sk, SkeletonDataset) and torch.equal(noisy_sk.edge_attr, skeletons.edge_attr)
    assert torch.equal(noisy_sk.fields["height"], noisy_sk.fields["pos"][..., 1:2] / 10)
    assert torch.equal(noisy_sk.fields["y"], fields["y"])
    assert not torch.equal(noisy_sk.fields["vel"], fields["vel"])
