"""The run summary tells the truth, and the run's plot is one to read a run from.

The printed summary, ``metrics.json`` and the model card give the gammas, multipliers and slacks
of the *selected* epoch (whose weights are scored on the test split), labelled as such, and the
last epoch's apart where they differ (issue 33: epoch 1's gammas were printed beside epoch 3's
multipliers). The plot has the losses, the equivariance defect, |gamma| (log scale) and the
multipliers on separate panels, every block's line distinct, integer epoch ticks and the
selected epoch marked.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from acezoo.cli import main
from acezoo.training.checkpoint import load_run
from acezoo.training.trainer import Trainer

SMALL = ["train.epochs=3", "train.tracking=false", "data.n_train=200", "data.n_val=100", "data.n_test=100",
         "train.num_threads=1"]


def test_summary_metrics_and_card_report_the_selected_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    """gcnn_digits_equality for 3 epochs, the validation score made worse after epoch 1 so that
    epoch 1 is selected while the multipliers keep moving in epochs 2 and 3."""
    real = Trainer.validate

    def worse_after_epoch_1(self: Trainer) -> dict:
        record = real(self)
        record[f"{self.select_key}_{self.data.task.metric}"] += self.epoch - 1
        return record

    monkeypatch.setattr(Trainer, "validate", worse_after_epoch_1)
    assert main(["train", "gcnn_digits_equality", *SMALL, "constraints.prune_tol=null", f"train.output_dir={tmp_path}",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    run = next(tmp_path.iterdir())
    m = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    first, last = history[0], history[-1]
    assert (m["best_epoch"], m["epochs_run"]) == (1, 3)
    for kind in ("gamma", "multiplier"):
        selected = {k.split("/", 1)[1]: v for k, v in first.items() if k.startswith(f"{kind}/")}
        final = {k.split("/", 1)[1]: v for k, v in last.items() if k.startswith(f"{kind}/")}
        assert selected and selected != final, kind  # the two epochs differ, so a mix would show
        assert m[f"{kind}s"] == selected, f"metrics.json {kind}s are not the selected epoch's"
    assert m["duals_epoch"] == 1
    for kind in ("gamma", "multiplier"):
        selected = {k.split("/", 1)[1]: v for k, v in first.items() if k.startswith(f"{kind}/")}
        final = {k.split("/", 1)[1]: v for k, v in last.items() if k.startswith(f"{kind}/")}
        assert m["last_epoch"][f"{kind}s"] == final, kind
        line = ", ".join(f"{k}={v:.4g}" for k, v in selected.items())
        assert f"{kind}s (selected epoch 1): {line}" in out, out
        assert f"{kind}s (last epoch 3, not selected): " + ", ".join(f"{k}={v:.4g}" for k, v in final.items()) in out
    assert m["last_epoch"]["epoch"] == 3
    _, model = load_run(run)  # the selected weights hold the selected epoch's gammas
    assert model.gamma_values() == pytest.approx(m["gammas"])
    card = (run / "README.md").read_text()
    assert "Final gammas" not in card
    selected_line = next(line for line in card.splitlines() if line.startswith("At the selected epoch 1 "))
    assert all(f"`{k}` {v:.4g}" in selected_line for k, v in m["multipliers"].items())
    last_line = next(line for line in card.splitlines() if line.startswith("At the last epoch (3, not selected)"))
    assert all(f"`{k}` {v:.4g}" in last_line for k, v in m["last_epoch"]["multipliers"].items())
    assert "## Inputs and outputs" in card and "| `x` | (B, 1, H, W) | float |" in card  # what the model reads


def test_no_last_epoch_entry_when_the_last_epoch_is_selected(tmp_path: Path) -> None:
    from acezoo.training.trainer import selected_duals

    history = [{"epoch": 1, "val_eq_mse": 2.0, "gamma/a": 0.5, "multiplier/a": 1.0},
               {"epoch": 2, "train_loss": 1.0},  # not validated (eval_every)
               {"epoch": 3, "val_eq_mse": 1.0, "gamma/a": 0.25, "multiplier/a": 2.0, "slack/a": 0.1}]
    assert selected_duals(history, 3) == {"gammas": {"a": 0.25}, "multipliers": {"a": 2.0}, "slacks": {"a": 0.1}}
    assert selected_duals(history, 1) == {"gammas": {"a": 0.5}, "multipliers": {"a": 1.0}, "slacks": {}}
    assert selected_duals(history, 2) is None


def _history(epochs: int = 4, layers: int = 4) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        rec = {"epoch": e, "train_loss": 1.0 / e, "val_eq_mse": 1.2 / e, "val_full_mse": 1.1 / e,
               "equivariance_error": 0.1 / e}
        for i in range(layers):
            for k in "xh":
                rec[f"gamma/layers.{i}.{k}"] = (0.9 - 0.01 * i) ** e if e < epochs else 0.0  # 0 at the end: pruned
                rec[f"multiplier/layers.{i}.{k}"] = 10.0 * e + i
        out.append(rec)
    return out


def test_the_run_plot_has_what_to_read_a_run_from() -> None:
    from acezoo.training.plots import run_figure

    fig = run_figure(_history(), "mse", selected_epoch=2, select_key="val_eq", title="t", pruned_epoch=3)
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert list(axes) == ["loss", "equivariance defect", "|gamma| per block", "multiplier lambda per block"]
    loss = [line.get_label() for line in axes["loss"].get_lines()]
    assert {"training loss", "validation mse, equivariant-only (selects)", "validation mse, full"} <= set(loss)
    assert axes["|gamma| per block"].get_yscale() == "log" and axes["loss"].get_yscale() == "log"
    assert axes["equivariance defect"].get_yscale() == "log"
    assert axes["multiplier lambda per block"].get_yscale() == "linear"
    for title in ("|gamma| per block", "multiplier lambda per block"):
        blocks = [ln for ln in axes[title].get_lines() if ln.get_label().startswith("layers.")]
        assert len(blocks) == 8, title
        styles = {(tuple(ln.get_color()), ln.get_linestyle()) for ln in blocks}
        assert len(styles) == 8, f"{title}: two blocks share colour and line style"
        assert axes[title].get_legend() is not None
    gammas = [ln for ln in axes["|gamma| per block"].get_lines() if ln.get_label() == "layers.0.x"][0]
    assert list(gammas.get_xdata()) == [1, 2, 3]  # the pruned 0 is left out of the log axis
    for title, ax in axes.items():
        marks = [ln for ln in ax.get_lines() if ln.get_label() == "selected epoch 2"]
        assert marks and list(marks[0].get_xdata()) == [2, 2], title
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), (title, ticks)
    assert any(ln.get_label() == "pruned after epoch 3" for ln in axes["|gamma| per block"].get_lines())
