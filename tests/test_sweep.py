"""The resumable, parallel sweep runner behind scripts/study_ace.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acezoo.config.loader import load_config
from acezoo.training.sweep import Contender, Sweep, _claim, collect, run_key, run_worker, summarise
from acezoo.run import TrainingInterrupted, train

from conftest import ZOO, tiny_overrides


def _sweep(tmp_path: Path) -> Sweep:
    common = [o for o in tiny_overrides(tmp_path) if not o.startswith("train.output_dir")]
    sweep = Sweep(str(ZOO / "egnn_nbody_equality.yaml"),
                  [Contender("strict", ("constraints.mode=strict",)),
                   Contender("bounded-sgd", ("model.branch=bounded", "constraints.gamma_optimizer=sgd"))],
                  [0, 1], str(tmp_path / "sweep"), common)
    sweep.save()
    return sweep


def _study_script():  # noqa: ANN202 - the module object of scripts/study_ace.py
    import importlib.util

    spec = importlib.util.spec_from_file_location("study_ace", Path(__file__).parents[1] / "scripts" / "study_ace.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    return study


def test_worker_trains_every_run_once_and_summary_selects_on_validation(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    assert run_worker(sweep.out) == 4
    assert run_worker(sweep.out) == 0  # finished runs are kept
    runs = collect(sweep.out)
    assert [(r["contender"], r["seed"]) for r in runs] == [("strict", 0), ("bounded-sgd", 0), ("strict", 1),
                                                           ("bounded-sgd", 1)]
    assert all(r["selected_on"] == "val_eq_mse" and r["history"] for r in runs)
    table, winner = summarise(sweep.out)
    assert winner == "bounded-sgd"  # the only ACE contender with every seed
    assert "| strict | 2 |" in table and "| bounded-sgd | 2 |" in table


def test_claims_are_exclusive_and_stale_claims_are_taken_over(tmp_path: Path) -> None:
    claims = tmp_path / "claims"
    assert _claim(claims, "a")
    assert not _claim(claims, "a")  # held by a live process (this one)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (claims / "b.pid").write_text(dead.stdout.strip())
    assert _claim(claims, "b")
    assert (claims / "b.pid").read_text() == str(os.getpid())


def test_workers_racing_for_the_same_runs_never_both_win(tmp_path: Path) -> None:
    """Workers started together claim the runs in the same order; each run gets one owner.
    (A claim file that was visible before its pid was written once let a second worker read it
    as stale, take it over and train the same run into the same directory.)"""
    claims, go = tmp_path / "claims", tmp_path / "go"
    code = ("import sys, time, pathlib\nfrom acezoo.training.sweep import _claim\n"
            "claims, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
            "while not go.exists():\n    time.sleep(0.001)\n"
            "won = [k for k in range(200) if _claim(claims, f'run{k}')]\n"
            "time.sleep(1.0)\n"  # stay alive: a live owner's claim must hold
            "print(' '.join(map(str, won)))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(claims), str(go)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    time.sleep(3.0)  # every worker imported and waiting
    go.touch()
    won = [int(k) for p in procs for k in p.communicate(timeout=120)[0].split()]
    assert sorted(won) == list(range(200)), "a run was claimed twice or not at all"


def test_an_interrupted_run_resumes_exactly(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    contender = sweep.contenders[1]
    conf = load_config(sweep.config, [*sweep.common, *contender.overrides, "seed=0", "train.progress=false"])
    reference = train(conf, run_dir=tmp_path / "reference")

    def stop(epoch: int, step: int) -> None:
        if epoch == 1 and step == 1:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(conf, run_dir=Path(sweep.out) / "runs" / run_key(contender.name, 0), on_step=stop)
    run_worker(sweep.out, only=[contender.name])
    record = json.loads((Path(sweep.out) / "results" / f"{run_key(contender.name, 0)}.json").read_text())
    assert record["test_pruned"] == reference.metrics["test"]["pruned"]["mse"]
    assert record["gammas"] == reference.metrics["gammas"]


def test_a_diverging_run_is_recorded_and_the_worker_goes_on(tmp_path: Path) -> None:
    common = [o for o in tiny_overrides(tmp_path, epochs=3) if not o.startswith("train.output_dir")]
    sweep = Sweep(str(ZOO / "egnn_nbody_equality.yaml"),
                  [Contender("exploding", ("constraints.gamma_optimizer=sgd", "constraints.gamma_lr=1e12")),
                   Contender("strict", ("constraints.mode=strict",))], [0], str(tmp_path / "sweep"), common)
    sweep.save()
    assert run_worker(sweep.out) == 2
    exploding, strict = collect(sweep.out)
    assert "non-finite loss" in exploding["diverged"] and "diverged" not in strict
    table, winner = summarise(sweep.out)
    assert "| exploding | 1 (1 diverged) |" in table


def test_the_winner_is_chosen_among_contenders_selected_like_the_baseline(tmp_path: Path) -> None:
    common = [o for o in tiny_overrides(tmp_path, epochs=1) if not o.startswith("train.output_dir")]
    sweep = Sweep(str(ZOO / "egnn_nbody_equality.yaml"),
                  [Contender("strict", ("constraints.mode=strict",)), Contender("eq", ("constraints.mode=equality",)),
                   Contender("pen", ("constraints.mode=penalty",))], [0], str(tmp_path / "sweep"), common)
    sweep.save()
    run_worker(sweep.out)
    pen = Path(sweep.out) / "results" / "pen-s0.json"
    record = json.loads(pen.read_text())
    assert record["selected_on"] == "val_full_mse"
    record["best_val"] = -1.0  # would win on the number, but was selected on its full model
    pen.write_text(json.dumps(record))
    assert summarise(sweep.out)[1] == "eq"
    assert summarise(sweep.out, baseline=None)[1] == "pen"
    strict = Path(sweep.out) / "results" / "strict-s0.json"
    record = json.loads(strict.read_text())
    record["best_val"] = -2.0  # lowest of all, but a strict run is no ACE contender (e.g. MoCap's per-protocol strict)
    strict.write_text(json.dumps(record))
    assert summarise(sweep.out, baseline=None)[1] == "pen"

    # seeds beyond the sweep's plan (e.g. trained by a second sweep and copied in) count when asked for
    extra = dict(record, seed=1, best_val=0.5)
    (Path(sweep.out) / "results" / "strict-s1.json").write_text(json.dumps(extra))
    assert "| strict | 1 |" in summarise(sweep.out)[0]
    assert "| strict | 2 |" in summarise(sweep.out, seeds=[0, 1])[0]
    assert "| eq | 1 |" in summarise(sweep.out, seeds=[0, 1])[0]


def test_rescore_scores_every_finished_run_on_changed_test_data(tmp_path: Path) -> None:
    """scripts/study_ace.py --rescore: each finished run's selected model on a larger test split;
    the study's own split (the first 30) reproduces the study's test figures."""
    study = _study_script()
    sweep = _sweep(tmp_path)
    run_worker(sweep.out)
    runs = {f"{r['contender']}-s{r['seed']}": r for r in collect(sweep.out)}
    study.rescore(Path(sweep.out), ["strict", "bounded-sgd"], ["data.n_test=30"], 1.0)
    cached = json.loads((Path(sweep.out) / "rescore.json").read_text())
    for key, r in runs.items():
        assert cached[key]["data.n_test=30"] == pytest.approx(r["test_pruned"], rel=1e-5)
    table = study.rescore(Path(sweep.out), ["strict", "bounded-sgd"], ["data.n_test=45"], 1.0)
    assert "with data.n_test=45 (45 samples)" in table
    assert "| strict | 2 |" in table and "| bounded-sgd | 2 |" in table
    assert "Paired bounded-sgd - strict over seeds [0, 1]" in table
    cached = json.loads((Path(sweep.out) / "rescore.json").read_text())
    assert set(cached["strict-s0"]) == {"data.n_test=30", "data.n_test=45"}  # earlier scores are kept
    again = study.rescore(Path(sweep.out), ["strict", "bounded-sgd"], ["data.n_test=45"], 1.0)  # from the cache
    assert again == table


def test_every_study_contender_is_a_valid_config() -> None:
    """Each contender of each task of scripts/study_ace.py, with the task's shared overrides,
    validates (a typo in a study's overrides fails here, not hours into a run)."""
    study = _study_script()
    root = Path(__file__).parents[1]
    for task, (config, common, _, _, contenders) in study.TASKS.items():
        for c in contenders:
            load_config(root / config, [*common, *c.overrides])  # raises ConfigError naming the key
    for task, (base, _) in study.SAMPLE_BASE.items():  # the n = 3000 point: the same model, budget and protocol
        assert study.TASKS[task][:2] == study.TASKS[base][:2], task


def test_robustness_reports_the_seeds_asked_for(tmp_path: Path) -> None:
    """scripts/study_ace.py --robustness --seeds: the given seeds, not the plan of the study's
    last training call (scores come from the cache, so nothing is trained or scored here)."""
    study = _study_script()
    sweep = Sweep(str(ZOO / "egnn_nbody_equality.yaml"), [Contender("strict", ("constraints.mode=strict",))],
                  [0], str(tmp_path / "sweep"), [])
    sweep.save()
    out = Path(sweep.out)
    (out / "results").mkdir(parents=True)
    for seed, score in ((0, 0.1), (1, 0.3)):
        record = {"contender": "strict", "seed": seed, "metric": "mse", "selected_on": "val_eq_mse",
                  "run_dir": str(tmp_path / "missing")}
        (out / "results" / f"strict-s{seed}.json").write_text(json.dumps(record))
    (out / "robustness.json").write_text(json.dumps({"strict-s0": {"0.1": 0.1}, "strict-s1": {"0.1": 0.3}}))
    assert "| strict | 1 | 0.1 +- 0 |" in study.robustness(out, ["strict"], [0.1], 1.0)
    assert "| strict | 2 | 0.2 +- 0.14 |" in study.robustness(out, ["strict"], [0.1], 1.0, seeds=[0, 1])
