#!/usr/bin/env python
"""Study: which ACE training dynamics and branch give the best *equivariant* model?

Each task trains the strict model and ACE (equality) contenders with the same data, budget and
selection rule (best validation loss of the equivariant-only model, checked every
``train.eval_every`` epochs), over several seeds, in resumable runs (see
:mod:`acezoo.training.sweep`): finished runs are kept, interrupted ones resume exactly.

Contenders (equality mode unless named ``strict``), each with the plain branch (an MLP), the
``bounded-`` one (batch norm + spectrally normalised linear layers, the ACE authors' EGNO form)
or the ``fixed-`` one (the same without affine batch-norm parameters and biases:
``model.branch=bounded_fixed``), with and without the augmented-Lagrangian term (``-nopen``:
``constraints.penalty=0``):

- ``adam``:    Adam on weights and gammas, Adam dual (the paper's setting; the old default);
- ``adamsgd``: weights on Adam, gammas on plain SGD at 1000 x lr, Adam dual (the ACE authors'
  N-body code, ``--optimizer adamsgd``);
- ``nupi``:    Adam on weights and gammas with gamma_lr 5e-3, nuPI dual with Kp = 10000;
- ``*-prune``: once every |gamma| <= tol (``constraints.prune_tol``) the branches are removed and
  the rest of the budget trains the equivariant model alone;
- ``penalty-w*``: the fixed-weight equivariance penalty (REMUL-style), selected on its full model.

    python scripts/study_ace.py nbody --workers 2          # train (resumable), then summarise
    python scripts/study_ace.py nbody --summary            # the table of what has finished
    python scripts/study_ace.py nbody --seeds 0 1 2 --only strict bounded-nupi

Writes ``<out>/<task>/results.md`` (the table; the winner is chosen on validation data only),
``curves.png`` (validation loss of the pruned and the full model, gamma and multiplier over
epochs, first seed) and one JSON per run under ``results/``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from acezoo.training.sweep import Contender, Sweep, collect, launch_workers, summarise

# every contender sets the whole recipe (the zoo configs' defaults are the study's winner)
DYNAMICS: dict[str, list[str]] = {
    "adam": ["constraints.dual_optimizer=adam", "constraints.gamma_optimizer=adam", "constraints.gamma_lr=null",
             "constraints.prune_tol=null"],
    "adamsgd": ["constraints.dual_optimizer=adam", "constraints.gamma_optimizer=sgd", "constraints.gamma_lr=null",
                "constraints.prune_tol=null"],
    "nupi": ["constraints.dual_optimizer=nupi", "constraints.dual_kp=10000", "constraints.gamma_optimizer=adam",
             "constraints.gamma_lr=5e-3", "constraints.prune_tol=null"],
}


# the ACE default of every equality zoo config but egnn_mocap_equality (the N-body study's winner), spelled out
DEFAULT_ACE = ("constraints.mode=equality", "model.branch=bounded", *DYNAMICS["nupi"], "constraints.prune_tol=0.02")
DEFAULT_VS_STRICT = [Contender("strict", ("constraints.mode=strict",)), Contender("bounded-nupi-prune", DEFAULT_ACE)]

BRANCH_PREFIX = {"plain": "", "bounded": "bounded-", "bounded_fixed": "fixed-", "stream": "stream-"}


def ace_contenders(branches: tuple[str, ...] = ("plain", "bounded", "bounded_fixed")) -> list[Contender]:
    """strict; every branch x dynamics with the augmented-Lagrangian term; the prune variants;
    the fixed-weight penalty baseline; then every branch x dynamics without the term (last: the
    least promising, trained last)."""
    out = [Contender("strict", ("constraints.mode=strict",))]

    def grid(pen: str) -> list[Contender]:
        return [Contender(BRANCH_PREFIX[branch] + dyn + ("" if pen != "0" else "-nopen"),
                          ("constraints.mode=equality", f"model.branch={branch}", f"constraints.penalty={pen}", *dyn_o))
                for branch in branches for dyn, dyn_o in DYNAMICS.items()]

    out += grid("1.0")
    # prune the branches once every |gamma| <= tol, then train the equivariant model alone
    for name, tol, branch, dyn in (("nupi-prune", "0.02", "plain", "nupi"), ("bounded-nupi-prune", "0.02", "bounded", "nupi"),
                                   ("adam-prune", "0.05", "plain", "adam")):
        out.append(Contender(name, ("constraints.mode=equality", f"model.branch={branch}", *DYNAMICS[dyn],
                                    f"constraints.prune_tol={tol}")))
    for weight in ("1", "10"):  # the fixed-weight equivariance penalty (REMUL-style), selected on its full model
        out.append(Contender(f"penalty-w{weight}", ("constraints.mode=penalty", f"constraints.penalty_weight={weight}")))
    return out + grid("0")


def stream_contenders() -> list[Contender]:
    """The ``stream`` branch (the ACE authors' EGNO form: the branches read no equivariant
    feature; EGNN only) with each dynamics, and pruned once feasible."""
    out = [Contender(f"stream-{dyn}", ("constraints.mode=equality", "model.branch=stream", "constraints.penalty=1.0",
                                       *dyn_o)) for dyn, dyn_o in DYNAMICS.items()]
    out.append(Contender("stream-nupi-prune", ("constraints.mode=equality", "model.branch=stream", *DYNAMICS["nupi"],
                                               "constraints.prune_tol=0.02")))
    return out


def initial_distance_contenders() -> list[Contender]:
    """The EGNN authors' N-body edge input, ``[q_i q_j, |x_i^0 - x_j^0|^2]``
    (``model.initial_distance=true``), for strict and for the default ACE recipe; then the same
    with the coordinate messages' norms capped at 100 (``model.coord_clamp``; the authors clamp
    each component to +-100), with and without that edge input."""
    extra = "model.initial_distance=true"
    clamp = "model.coord_clamp=100"  # the authors' bound on coordinate messages, as a norm cap (equivariant)
    return [Contender("dist0-strict", ("constraints.mode=strict", extra)),
            Contender("dist0-bounded-nupi-prune", (*DEFAULT_ACE, extra)),
            Contender("clamp-dist0-strict", ("constraints.mode=strict", extra, clamp)),
            Contender("clamp-dist0-bounded-nupi-prune", (*DEFAULT_ACE, extra, clamp)),
            Contender("clamp-strict", ("constraints.mode=strict", clamp)),
            Contender("clamp-bounded-nupi-prune", (*DEFAULT_ACE, clamp))]


def protocol_contenders(dynamics: list[str]) -> list[Contender]:
    """MoCap: strict, equality and resilient under the E(3)-strict protocol (node input |v|) and
    the published one (|v| and the joint's height, EGNO's node features)."""
    out = []
    for protocol, extra in (("e3", ()), ("height", ("model.node_features=[height]",))):
        out.append(Contender(f"{protocol}-strict", ("constraints.mode=strict", *extra)))
        for mode in ("equality", "resilient"):
            out.append(Contender(f"{protocol}-{mode}", (f"constraints.mode={mode}", *extra, *dynamics, *DYNAMICS["adam"])))
    for protocol, extra in (("e3", ()), ("height", ("model.node_features=[height]",))):  # the N-body winner's dynamics
        out.append(Contender(f"{protocol}-equality-nupi-prune", ("constraints.mode=equality", *extra, *dynamics,
                                                                 *DYNAMICS["nupi"], "constraints.prune_tol=0.02")))
    for protocol, extra in (("e3", ()), ("height", ("model.node_features=[height]",))):  # the authors' EGNO branch
        stream = (*extra, "model.branch=stream")
        for mode in ("equality", "resilient"):
            out.append(Contender(f"{protocol}-{mode}-stream", (f"constraints.mode={mode}", *stream, *DYNAMICS["adam"])))
        out.append(Contender(f"{protocol}-equality-stream-nupi-prune", ("constraints.mode=equality", *stream,
                                                                        *DYNAMICS["nupi"], "constraints.prune_tol=0.02")))
    # the winner's branch with the other dynamics: the authors' adamsgd, nuPI unpruned, and the
    # paper's Adam without the augmented-Lagrangian term (ACE's Algorithm 1 verbatim)
    for protocol, extra in (("e3", ()), ("height", ("model.node_features=[height]",))):
        stream = ("constraints.mode=equality", *extra, "model.branch=stream")
        out += [Contender(f"{protocol}-equality-stream-adamsgd", (*stream, *DYNAMICS["adamsgd"])),
                Contender(f"{protocol}-equality-stream-nupi", (*stream, *DYNAMICS["nupi"])),
                Contender(f"{protocol}-equality-stream-nopen", (*stream, *DYNAMICS["adam"], "constraints.penalty=0"))]
    return out


def sample_contenders(sizes: tuple[int, ...] = (1000, 5000, 9000)) -> list[Contender]:
    """Strict vs the ACE default (bounded branch, nuPI, pruned at |gamma| <= 0.02) with
    ``n`` training trajectories (same validation and test sets); n = 3000 is the ``nbody`` study's."""
    out = []
    for n in sizes:
        out += [Contender(f"strict-n{n}", ("constraints.mode=strict", f"data.n_train={n}")),
                Contender(f"ace-n{n}", (*DEFAULT_ACE, f"data.n_train={n}"))]
    return out


def segnn_contenders() -> list[Contender]:
    """SEGNN on N-body: strict; ACE with the authors' recipe (the config's own: the ``authors``
    branch, Adam on weights and gammas, Adam dual, no augmented term); our best ACE recipe from
    the EGNN and SE(3)-Transformer studies (bounded branch, nuPI dual with Kp = 10000, gamma_lr
    5e-3, the augmented term, gradient norm clipped at 1, branches kept)."""
    return [Contender("strict", ("constraints.mode=strict",), "the equivariant network alone"),
            Contender("ace-authors", ("constraints.mode=equality",), "the ACE authors' SEGNN recipe (the config)"),
            Contender("ace-ours", ("constraints.mode=equality", "model.branch=bounded", "constraints.penalty=1.0",
                                   *DYNAMICS["nupi"], "train.grad_clip=1.0"),
                      "the EGNN N-body winner's recipe: bounded branch, nuPI, clipping")]


def segnn_sample_contenders(sizes: tuple[int, ...] = (5000, 9000)) -> list[Contender]:
    """SEGNN strict vs ACE (the authors' recipe) with ``n`` training trajectories of the same
    draw; n = 3000 comes from the ``segnn-nbody`` study."""
    out = []
    for n in sizes:
        out += [Contender(f"strict-n{n}", ("constraints.mode=strict", f"data.n_train={n}")),
                Contender(f"ace-n{n}", ("constraints.mode=equality", f"data.n_train={n}"))]
    return out


def egno_contenders() -> list[Contender]:
    """EGNO on MoCap (the EGNO protocol): strict, equality and resilient with the configs' recipe
    (the ACE authors' stream branch, Adam dual at 2e-4); resilient is selected on its full model."""
    return [Contender("strict", ("constraints.mode=strict",), "the equivariant network alone"),
            Contender("equality", ("constraints.mode=equality",), "ACE, equality: pruned model"),
            Contender("resilient", ("constraints.mode=resilient", "train.select_on=full"),
                      "ACE, resilient: full model")]


# the sample-efficiency studies and the study whose strict and ACE-default runs give their n = 3000 point
SAMPLE_BASE = {"nbody-samples": ("nbody", "EGNN"), "se3t-nbody-samples": ("se3t-nbody", "SE(3)-Transformer"),
               "segnn-nbody-samples": ("segnn-nbody", "SEGNN")}

# task -> (base config, shared overrides: budget and protocol, metric scale, unit, contenders)
# The N-body studies were run without gradient clipping, the config's default then: they pin it
# off, so that they resume and extend as they were run. The clipped default was chosen with
# `--out docs/studies/ace-clip ... train.grad_clip=1.0` (extra overrides come last and win).
NBODY_PROTOCOL = ["train.epochs=500", "train.eval_every=5", "train.patience=150", "train.grad_clip=null"]
SE3T_NBODY_PROTOCOL = ["train.epochs=500", "train.eval_every=5", "train.patience=150"]  # the config's clipping
# SEGNN: the budget of the EGNN and SE(3)-Transformer N-body studies (500 epochs, validation every 5,
# patience 150) with the configs' recipes; the configs themselves keep the published 2000 epochs
SEGNN_PROTOCOL = ["train.epochs=500", "train.eval_every=5", "train.patience=150"]
TASKS: dict[str, tuple[str, list[str], float, str, list[Contender]]] = {
    "segnn-nbody": ("zoo_configs/segnn_nbody_equality.yaml", SEGNN_PROTOCOL, 1.0, "MSE", segnn_contenders()),
    "segnn-nbody-samples": ("zoo_configs/segnn_nbody_equality.yaml", SEGNN_PROTOCOL, 1.0, "MSE",
                            segnn_sample_contenders()),
    # EGNO on MoCap at the published budget (the configs': up to 3000 epochs, patience 200, every 5)
    "egno-mocap": ("zoo_configs/egno_mocap_equality.yaml", [], 100.0, "MSE x 1e-2 (last frame)", egno_contenders()),
    "nbody": ("zoo_configs/egnn_nbody_equality.yaml", NBODY_PROTOCOL, 1.0, "MSE",
              ace_contenders() + stream_contenders() + initial_distance_contenders()),
    "se3t-nbody": ("zoo_configs/se3t_nbody_equality.yaml", SE3T_NBODY_PROTOCOL, 1.0, "MSE", DEFAULT_VS_STRICT),
    "qm9": ("zoo_configs/egnn_qm9_equality.yaml", ["train.epochs=40"], 1.0, "MAE meV", DEFAULT_VS_STRICT),
    # the SE(3)-Transformer on QM9 at the EGNN's converged QM9 budget (300 epochs, cosine, patience 40)
    "se3t-qm9": ("zoo_configs/se3t_qm9_equality.yaml",
                 ["train.epochs=300", "train.lr_schedule=cosine", "train.patience=40"], 1.0, "MAE meV",
                 DEFAULT_VS_STRICT),
    "nbody-samples": ("zoo_configs/egnn_nbody_equality.yaml", NBODY_PROTOCOL, 1.0, "MSE", sample_contenders()),
    "se3t-nbody-samples": ("zoo_configs/se3t_nbody_equality.yaml", SE3T_NBODY_PROTOCOL, 1.0, "MSE",
                           sample_contenders((5000, 9000))),
    "mocap": ("zoo_configs/egnn_mocap_equality.yaml",
              ["train.epochs=3000", "train.eval_every=5", "train.patience=200", "data.path=../shared/data/cmu_mocap_run.npz"],
              100.0, "MSE x 1e-2", protocol_contenders(["model.branch=bounded"])),
    "digits": ("zoo_configs/gcnn_digits_equality.yaml", ["train.epochs=60", "train.patience=60"], 100.0, "% error",
               ace_contenders()),
    "advection": ("zoo_configs/gcnn_advection_equality.yaml", ["train.epochs=60", "train.patience=60"], 1.0, "MSE",
                  ace_contenders()),
}


def plot_curves(out: Path, names: list[str] | None = None, path: Path | None = None) -> None:
    """Validation loss (pruned and full), mean |gamma| and mean multiplier over epochs, first
    seed of every contender (or of ``names``), to ``path`` (default ``<out>/curves.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = collect(out)
    if not runs:
        return
    first_seed = min(r["seed"] for r in runs)
    runs = [r for r in runs if r["seed"] == first_seed and r["history"] and (not names or r["contender"] in names)]
    if names:
        runs.sort(key=lambda r: names.index(r["contender"]))
    metric = runs[0]["metric"]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    for r in runs:
        h = [rec for rec in r["history"] if f"val_eq_{metric}" in rec]
        ep = [rec["epoch"] for rec in h]
        line, = axes[0].plot(ep, [rec[f"val_eq_{metric}"] for rec in h], lw=1, label=r["contender"])
        if r["gammas"]:  # a relaxed model
            axes[1].plot(ep, [rec[f"val_full_{metric}"] for rec in h], lw=1, color=line.get_color())
            g = [[abs(v) for k, v in rec.items() if k.startswith("gamma/")] for rec in h]
            axes[2].plot(ep, [sum(x) / len(x) for x in g], lw=1, color=line.get_color())
            lam = [[v for k, v in rec.items() if k.startswith("multiplier/")] for rec in h]
            axes[3].plot(ep, [sum(x) / len(x) if x else float("nan") for x in lam], lw=1, color=line.get_color())
    for ax, title in zip(axes, (f"validation {metric}, pruned (equivariant)", f"validation {metric}, full",
                                "mean |gamma|", "mean multiplier")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
    for ax in axes[:3]:
        ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path or out / "curves.png", dpi=100)
    plt.close(fig)


def sample_efficiency(out: Path, nbody_out: Path, seeds: list[int], plot_to: Path | None = None,
                      model: str = "EGNN") -> str:
    """Test MSE (pruned) against training trajectories, strict vs the ACE default: the
    ``nbody-samples`` (or ``se3t-nbody-samples``) runs, with n = 3000 taken from the base study
    in ``nbody_out`` (same budget and selection rule: its ``strict`` and ``bounded-nupi-prune``
    contenders, or ``ace-authors`` for SEGNN)."""
    import statistics

    rows: dict[tuple[str, int], list[dict]] = {}
    for r in collect(out, seeds):
        kind, n = r["contender"].rsplit("-n", 1)
        rows.setdefault((kind, int(n)), []).append(r)
    for r in collect(nbody_out, seeds):
        kind = {"strict": "strict", "bounded-nupi-prune": "ace", "ace-authors": "ace"}.get(r["contender"])
        if kind:
            rows.setdefault((kind, 3000), []).append(r)
    rows = {k: [r for r in v if r["seed"] in seeds] for k, v in rows.items()}
    sizes = sorted({n for _, n in rows})
    lines = ["| training trajectories | strict: test MSE | ACE (equality, pruned): test MSE | ACE / strict | "
             "strict: best val | ACE: best val | seeds |", "|---|---|---|---|---|---|---|"]
    curves: dict[str, list[tuple[int, float, float]]] = {"strict": [], "ace": []}
    for n in sizes:
        cells, means, seeds_here = [], {}, []
        for kind in ("strict", "ace"):
            rs = rows.get((kind, n), [])
            vals = [r["test_pruned"] for r in rs]
            if vals:
                m, sd = statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0
                means[kind] = m
                curves[kind].append((n, m, sd))
                cells.append(f"{m:.5f} +- {sd:.5f}")
            else:
                cells.append("-")
            seeds_here.append(str(len(vals)))
        vals = {k: [r["best_val"] for r in rows.get((k, n), [])] for k in ("strict", "ace")}
        ratio = f"{means['ace'] / means['strict']:.3f}" if len(means) == 2 else "-"
        val_cells = [f"{statistics.mean(v):.5f}" if v else "-" for v in vals.values()]
        lines.append(f"| {n} | {cells[0]} | {cells[1]} | {ratio} | {val_cells[0]} | {val_cells[1]} | "
                     f"{'/'.join(seeds_here)} |")
    if plot_to is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for kind, label in (("strict", f"strict {model}"), ("ace", "ACE (equality, pruned)")):
            pts = curves[kind]
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o",
                            capsize=3, label=label)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_xlabel("training trajectories")
        ax.set_ylabel("test MSE (mean +- std over seeds)")
        ax.set_title(f"charged N-body, {model}: sample efficiency")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot_to, dpi=100)
        plt.close(fig)
    return "\n".join(lines)


def robustness(out: Path, contenders: list[str], sigmas: list[float], scale: float,
               seeds: list[int] | None = None) -> str:
    """Test metric of every finished run of ``contenders`` (of ``seeds``; default: the study's
    last seeds) under seeded Gaussian input noise (``acezoo eval --perturb``): pruned model (full
    model for contenders selected on it)."""
    import json
    import statistics

    from acezoo.training.perturb import score_perturbed

    cache = out / "robustness.json"
    scores: dict[str, dict[str, float]] = json.loads(cache.read_text()) if cache.exists() else {}
    runs = [r for r in collect(out, seeds) if r["contender"] in contenders and r["metric"]]  # scored (diverged: best weights)
    for r in runs:
        key = f"{r['contender']}-s{r['seed']}"
        if all(f"{sg:g}" in scores.get(key, {}) for sg in sigmas):
            continue
        which = "full" if r["selected_on"].startswith("val_full") else "pruned"
        entries = score_perturbed(r["run_dir"], sigmas)["perturbed"]
        scores.setdefault(key, {}).update({f"{e['noise']:g}": e[which][r["metric"]] for e in entries})
        cache.write_text(json.dumps(scores, indent=1))
    lines = ["| contender | seeds | " + " | ".join(f"noise {sg:g}" for sg in sigmas) + " |",
             "|---|---|" + "---|" * len(sigmas)]
    for c in contenders:
        rs = [r for r in runs if r["contender"] == c]
        if not rs:
            continue
        cells = []
        for sg in sigmas:
            vals = [scores[f"{r['contender']}-s{r['seed']}"][f"{sg:g}"] * scale for r in rs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.4g} +- {sd:.2g}")
        lines.append(f"| {c} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rescore(out: Path, contenders: list[str], overrides: list[str], scale: float, split: str = "test",
            seeds: list[int] | None = None) -> str:
    """Every finished run of ``contenders`` scored on ``split`` of its data with ``overrides``
    (``data.*`` keys, e.g. ``data.n_test=5000``: a larger test split from the same block, which
    contains the study's own), as ``acezoo eval RUN_DIR data.KEY=VALUE`` does: the
    pruned model (the full one for contenders selected on it), per seed, and the paired
    difference to the first contender of each seed."""
    import json
    import statistics

    from acezoo.data.bundle import DataBundle
    from acezoo.training.checkpoint import load_run
    from acezoo.training.evaluate import evaluate
    from acezoo.training.trainer import build_data

    label = " ".join(overrides)
    cache = out / "rescore.json"
    scores: dict[str, dict[str, float]] = json.loads(cache.read_text()) if cache.exists() else {}
    runs = [r for r in collect(out, seeds) if r["contender"] in contenders and r["metric"]]
    built: dict[str, DataBundle] = {}  # data built once per data config (contenders may change data.*)
    for r in runs:
        key = f"{r['contender']}-s{r['seed']}"
        if label in scores.get(key, {}):
            continue
        config, model = load_run(r["run_dir"], tuple(overrides))
        data_key = config.data.model_dump_json()
        if data_key not in built:
            built[data_key] = build_data(config)
        data = built[data_key]
        which = model if r["selected_on"].startswith("val_full") else model.prune()
        value = evaluate(which.eval(), getattr(data, split), data.task, torch.device("cpu"),
                         max(500, config.train.batch_size))[r["metric"]]
        scores.setdefault(key, {})[label] = value
        scores.setdefault("_samples", {})[label] = len(getattr(data, split))
        tmp = cache.with_suffix(".json.tmp")  # a run cut off mid-write leaves the cache whole
        tmp.write_text(json.dumps(scores, indent=1))
        tmp.replace(cache)
        print(f"{key}: {split} {r['metric']} {value * scale:.4g} with {label} ({r[f'{split}_pruned'] * scale:.4g} "
              f"in the study)", flush=True)
    samples = scores.get("_samples", {}).get(label)
    size = f" ({samples} samples)" if samples else ""
    lines = [f"{split} {runs[0]['metric'] if runs else ''} with {label}{size}, mean +- std over seeds "
             f"(in the study: its own {split} split)", "",
             f"| contender | seeds | {split}, study | {split}, {label} | per seed, {label} |", "|---|---|---|---|---|"]
    by_seed: dict[str, dict[int, float]] = {}
    for c in contenders:
        rs = [r for r in runs if r["contender"] == c]
        if not rs:
            continue
        vals = [scores[f"{c}-s{r['seed']}"][label] * scale for r in rs]
        study = [r[f"{split}_pruned" if not r["selected_on"].startswith("val_full") else f"{split}_full"] * scale
                 for r in rs]
        by_seed[c] = {r["seed"]: v for r, v in zip(rs, vals)}

        def ms(v: list[float]) -> str:
            return f"{statistics.mean(v):.4g} +- {statistics.stdev(v) if len(v) > 1 else 0.0:.2g}"
        lines.append(f"| {c} | {len(rs)} | {ms(study)} | {ms(vals)} | {' / '.join(f'{v:.4g}' for v in vals)} |")
    if len(by_seed) > 1:
        first, *others = list(by_seed)
        for c in others:
            common = sorted(set(by_seed[first]) & set(by_seed[c]))
            diffs = [by_seed[c][s] - by_seed[first][s] for s in common]
            if diffs:
                sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
                lines.append(f"\nPaired {c} - {first} over seeds {common}: {statistics.mean(diffs):+.4g} +- {sd:.2g} "
                             f"({sum(d < 0 for d in diffs)} of {len(diffs)} seeds lower)")
    return "\n".join(lines)


def _report(path: Path, text: str) -> int:
    """Write a report's markdown to ``path`` and print it."""
    path.write_text(text + "\n")
    print(text)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=list(TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=None,
                    help="seeds to train or report (default 0 1 2; --robustness and --rescore: the study's last seeds)")
    ap.add_argument("--only", nargs="+", default=[], help="train only these contenders")
    ap.add_argument("--workers", type=int, default=1, help="parallel runs, one thread each")
    ap.add_argument("--out", default="study/ace")
    ap.add_argument("--summary", action="store_true", help="only print the table of finished runs")
    ap.add_argument("--plot", nargs="+", metavar="CONTENDER", help="plot the curves of these contenders to --plot-to")
    ap.add_argument("--plot-to", type=Path, help="PNG path for --plot")
    ap.add_argument("--robustness", nargs="+", type=float, metavar="SIGMA",
                    help="score the finished runs of --only (default: all) under these input-noise levels")
    ap.add_argument("--rescore", nargs="+", metavar="data.KEY=VALUE",
                    help="score the finished runs of --only (default: all) on test data changed by these overrides, "
                    "e.g. data.n_test=5000")
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides for every run")
    args = ap.parse_intermixed_args()
    config, common, scale, unit, contenders = TASKS[args.task]
    out = Path(args.out) / args.task
    picked_seeds = args.seeds  # None: not given
    args.seeds = args.seeds or [0, 1, 2]
    sweep = Sweep(config, contenders, args.seeds, str(out),
                  [*common, "train.tracking=false", f"train.output_dir={out / 'runs'}", *args.overrides], scale, unit)
    if args.plot:
        plot_curves(out, args.plot, args.plot_to)
        return 0
    names = args.only or [c.name for c in contenders]
    if args.task in SAMPLE_BASE and args.summary:
        base, model = SAMPLE_BASE[args.task]
        return _report(out / "results.md", sample_efficiency(out, Path(args.out) / base, args.seeds, args.plot_to, model))
    if args.robustness:
        return _report(out / "robustness.md", robustness(out, names, args.robustness, scale, picked_seeds))
    if args.rescore:
        return _report(out / "rescore.md", rescore(out, names, args.rescore, scale, seeds=picked_seeds))
    if not args.summary:
        sweep.save()
        launch_workers(out, args.workers, args.only, log=out / "workers.log")
    table, winner = summarise(out, baseline="strict" if args.task != "mocap" and args.task not in SAMPLE_BASE else None,
                              seeds=args.seeds if args.summary else None, only=args.only if args.summary else ())
    text = (f"{args.task}: base {config}, overrides {' '.join(sweep.common)}; seeds {args.seeds}. "
            f"Mean +- std over seeds; selection on validation only.\n\n{table}\n\n"
            f"Lowest mean validation loss among ACE contenders with every seed: {winner}\n")
    (out / "results.md").write_text(text)
    plot_curves(out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
