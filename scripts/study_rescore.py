#!/usr/bin/env python
"""Score a study's finished trials again: under input noise, or on changed data.

``acezoo study STUDY.yaml`` trains the trials and tabulates them; this script adds two analyses
of the trials that have a record (``<records>/results/<contender>-s<seed>.json``):

- ``--robustness SIGMA ...``: the test metric under seeded Gaussian input noise of standard
  deviation SIGMA (as ``acezoo eval RUN_DIR --perturb noise=SIGMA``);
- ``--rescore data.KEY=VALUE ...``: the test metric on data changed by these overrides (as
  ``acezoo eval RUN_DIR data.KEY=VALUE``; e.g. ``data.n_test=5000``: a larger test split from
  the same block, which contains the study's own), with the paired per-seed difference to the
  first contender.

Each trial's delivered model is scored: the pruned one, or the full one for contenders selected
on it. Scores are cached in ``robustness.json`` / ``rescore.json`` in the records folder (one
entry per trial and noise level / override list, so nothing is scored twice); the table is
written to ``robustness.md`` / ``rescore.md`` there and printed. The default seeds are the
study file's ``seeds``; the default contenders all of the study's, in its order (``--only``:
these, in this order).

    python scripts/study_rescore.py zoo_studies/ace-digits.yaml --robustness 0.05 0.1 0.2 --only strict adam bounded-nupi-prune
    python scripts/study_rescore.py zoo_studies/ace300-rerun-qm9.yaml --rescore data.n_test=13083 --only strict bounded-nupi-prune

A trial's weights are read from its record's ``run_dir``: a run directory (the records of the
retired sweep runner), or a trial folder of ``acezoo study``'s storage, whose newest checkpoint
is the finished run (looked up there, else in ``--storage``, default ``<records>/tune``; a
remote storage's checkpoint is downloaded to a temporary folder).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acezoo.errors import AcezooError, CheckpointError, OptionError
from acezoo.io.atomic import atomic_write_text
from acezoo.studies.loader import Study, load_study
from acezoo.studies.records import collect, trial_key

__all__ = ["robustness", "rescore", "trial_run_dir", "main"]


def _names(study: Study, only: Sequence[str]) -> list[str]:
    """``only`` (checked against the study's contenders), else every contender of the study."""
    names = [c.name for c in study.spec.contenders]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise OptionError(f"--only: no contender {', '.join(unknown)} in {study.source} "
                          f"(contenders: {', '.join(names)})")
    return list(only) or names


def _finished(study: Study, contenders: Sequence[str], seeds: Sequence[int] | None) -> list[dict[str, Any]]:
    """The scored records of ``contenders`` x ``seeds`` (default: the study's seeds); a trial that
    diverged before its first validation has no metric and is left out (a later divergence keeps
    its best validated weights and is scored)."""
    seeds = list(seeds) if seeds is not None else list(study.spec.seeds)
    return [r for r in collect(study.records, contenders, seeds) if r["metric"]]


def _write_cache(cache: Path, scores: dict[str, Any]) -> None:
    atomic_write_text(cache, json.dumps(scores, indent=1))  # a run cut off mid-write leaves the cache whole


def trial_run_dir(study: Study, record: dict[str, Any], scratch: Path, storage: str | None = None) -> Path:
    """A local run directory holding the trial's selected weights (see the module's docstring)."""
    from acezoo.run_layout import WEIGHTS_FILE

    run_dir = Path(record["run_dir"])
    if (run_dir / WEIGHTS_FILE).is_file():
        return run_dir
    from acezoo.studies.storage import Storage

    key = trial_key(record["contender"], int(record["seed"]))
    stores = [Storage(storage, study.name)] if storage else []
    if not storage and run_dir.is_dir():  # the trial folder of a local storage: <storage>/<study>/<key>
        stores.append(Storage(str(run_dir.parent.parent), run_dir.parent.name))
    if not storage:
        stores.append(Storage(str(study.records / "tune"), study.name))
    for store in stores:
        newest = store.newest_checkpoint(key)
        if newest is None:
            continue
        folder = newest[0]
        if "://" not in store.uri and (Path(folder) / WEIGHTS_FILE).is_file():
            return Path(folder)
        local = scratch / key
        store.download(folder, local)
        return local
    where = ", ".join(store.trial_dir(key) for store in stores)
    raise CheckpointError(f"{key}: no run directory at {run_dir} and no checkpoint of the trial in {where}"
                          + ("" if storage else " (a remote storage: pass --storage URI)"))


def robustness(study: Study, contenders: Sequence[str], sigmas: Sequence[float], seeds: Sequence[int] | None = None,
               storage: str | None = None) -> str:
    """Test metric of every finished trial of ``contenders`` (of ``seeds``; default: the study's)
    under seeded Gaussian input noise (``acezoo eval --perturb``): pruned model (full model for
    contenders selected on it). Scores are cached in ``<records>/robustness.json``."""
    from acezoo.training.perturb import score_perturbed

    scale = study.spec.report.scale
    cache = study.records / "robustness.json"
    scores: dict[str, dict[str, float]] = json.loads(cache.read_text()) if cache.exists() else {}
    runs = _finished(study, contenders, seeds)  # scored (diverged: best weights)
    with tempfile.TemporaryDirectory(prefix="acezoo-rescore-") as scratch:
        for r in runs:
            key = trial_key(r["contender"], r["seed"])
            if all(f"{sg:g}" in scores.get(key, {}) for sg in sigmas):
                continue
            which = "full" if r["selected_on"].startswith("val_full") else "pruned"
            entries = score_perturbed(trial_run_dir(study, r, Path(scratch), storage), sigmas)["perturbed"]
            scores.setdefault(key, {}).update({f"{e['noise']:g}": e[which][r["metric"]] for e in entries})
            _write_cache(cache, scores)
    lines = ["| contender | seeds | " + " | ".join(f"noise {sg:g}" for sg in sigmas) + " |",
             "|---|---|" + "---|" * len(sigmas)]
    for c in contenders:
        rs = [r for r in runs if r["contender"] == c]
        if not rs:
            continue
        cells = []
        for sg in sigmas:
            vals = [scores[trial_key(r["contender"], r["seed"])][f"{sg:g}"] * scale for r in rs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.4g} +- {sd:.2g}")
        lines.append(f"| {c} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_data_overrides(overrides: Sequence[str]) -> list[str]:
    """``--rescore``'s overrides when each is ``data.KEY=VALUE`` with ``KEY`` not ``dataset``
    (as ``acezoo eval`` allows: the data may change, the model, constraints and training may not)."""
    for text in overrides:
        key = text.partition("=")[0].strip()
        if "=" not in text or not key.startswith("data.") or key in ("data.", "data.dataset"):
            raise OptionError(f"--rescore: override {text!r} is not allowed; allowed: data.KEY=VALUE with KEY not "
                              "dataset (e.g. data.n_test=5000); the model, constraints and training stay as trained")
    return list(overrides)


def rescore(study: Study, contenders: Sequence[str], overrides: Sequence[str], seeds: Sequence[int] | None = None,
            storage: str | None = None) -> str:
    """Every finished trial of ``contenders`` (of ``seeds``; default: the study's) scored on the
    test split of its data with ``overrides`` (``data.*`` keys), as ``acezoo eval RUN_DIR
    data.KEY=VALUE`` does: the pruned model (the full one for contenders selected on it), per
    seed, and the paired difference to the first contender of each seed. Scores are cached in
    ``<records>/rescore.json`` under the overrides joined by spaces."""
    import torch

    from acezoo.data.bundle import DataBundle
    from acezoo.run import build_data
    from acezoo.training.checkpoint import load_run
    from acezoo.training.evaluate import evaluate

    overrides = check_data_overrides(overrides)
    split = "test"
    scale = study.spec.report.scale
    label = " ".join(overrides)
    cache = study.records / "rescore.json"
    scores: dict[str, dict[str, float]] = json.loads(cache.read_text()) if cache.exists() else {}
    runs = _finished(study, contenders, seeds)
    built: dict[str, DataBundle] = {}  # data built once per data config (contenders may change data.*)
    with tempfile.TemporaryDirectory(prefix="acezoo-rescore-") as scratch:
        for r in runs:
            key = trial_key(r["contender"], r["seed"])
            if label in scores.get(key, {}):
                continue
            config, model = load_run(trial_run_dir(study, r, Path(scratch), storage), tuple(overrides))
            data_key = config.data.model_dump_json()
            if data_key not in built:
                built[data_key] = build_data(config)
            data = built[data_key]
            which = model if r["selected_on"].startswith("val_full") else model.prune()
            value = evaluate(which.eval(), getattr(data, split), data.task, torch.device("cpu"),
                             max(500, config.train.batch_size))[r["metric"]]
            scores.setdefault(key, {})[label] = value
            scores.setdefault("_samples", {})[label] = len(getattr(data, split))
            _write_cache(cache, scores)
            print(f"{key}: {split} {r['metric']} {value * scale:.4g} with {label} "
                  f"({r[f'{split}_pruned'] * scale:.4g} in the study)", flush=True)
    samples = scores.get("_samples", {}).get(label)
    size = f" ({samples} samples)" if samples else ""
    lines = [f"{split} {runs[0]['metric'] if runs else ''} with {label}{size}, mean +- std over seeds "
             f"(in the study: its own {split} split)", "",
             f"| contender | seeds | {split}, study | {split}, {label} | per seed, {label} |", "|---|---|---|---|---|"]
    by_seed: dict[str, dict[int, float]] = {}

    def ms(v: list[float]) -> str:
        return f"{statistics.mean(v):.4g} +- {statistics.stdev(v) if len(v) > 1 else 0.0:.2g}"

    for c in contenders:
        rs = [r for r in runs if r["contender"] == c]
        if not rs:
            continue
        vals = [scores[trial_key(c, r["seed"])][label] * scale for r in rs]
        in_study = [r[f"{split}_pruned" if not r["selected_on"].startswith("val_full") else f"{split}_full"] * scale
                    for r in rs]
        by_seed[c] = {r["seed"]: v for r, v in zip(rs, vals)}
        lines.append(f"| {c} | {len(rs)} | {ms(in_study)} | {ms(vals)} | {' / '.join(f'{v:.4g}' for v in vals)} |")
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", help="study file (YAML, see zoo_studies/)")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--robustness", nargs="+", type=float, metavar="SIGMA",
                      help="score the finished trials under these input-noise levels")
    what.add_argument("--rescore", nargs="+", metavar="data.KEY=VALUE",
                      help="score the finished trials on test data changed by these overrides, e.g. data.n_test=5000")
    ap.add_argument("--only", nargs="+", default=[], metavar="CONTENDER", help="only these contenders (in this order)")
    ap.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="only these seeds (default: the study's)")
    ap.add_argument("--records", help="folder of the trial records, caches and tables (default: the study's records:)")
    ap.add_argument("--storage", help="the study's storage, where trials' checkpoints are looked up when a record's "
                    "run_dir is no run directory (default: the record's trial folder, then <records>/tune)")
    args = ap.parse_args(argv)
    try:
        study = load_study(args.study, check_trials=False)
        if args.records:
            study = dataclasses.replace(study, records=Path(args.records))
        names = _names(study, args.only)
        if not study.records.is_dir():
            raise OptionError(f"{study.source}: no records folder {study.records}; run `acezoo study {study.source}` "
                              "first")
        if args.robustness:
            text = robustness(study, names, args.robustness, args.seeds, args.storage)
            return _report(study.records / "robustness.md", text)
        text = rescore(study, names, args.rescore, args.seeds, args.storage)
        return _report(study.records / "rescore.md", text)
    except AcezooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
