"""``acezoo study STUDY.yaml``: run a study on Ray Tune, or (``--summary``) tabulate its records."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

__all__ = ["add_study_parser", "cmd_study", "write_summary"]


def write_summary(study, seeds=None, only=(), out: Path | None = None, quiet: bool = False,  # noqa: ANN001
                  plot_to: Path | None = None, plot: tuple[str, ...] = ()) -> int:
    """Print the study's tables and write ``results.md``, ``summary.json`` and the plot to ``out``
    (default: the records folder); exit status 0, or 2 when no trial has finished.

    The files always describe the whole study (every contender, the study's seeds), so a run or a
    summary restricted with ``seeds`` / ``only`` never replaces them with a part of it: the
    restricted tables are printed, and drawn to ``plot_to`` when it is given (of the contenders
    ``plot``, in that order, if given), else the whole study is drawn into the records."""
    from acezoo.errors import OptionError
    from acezoo.io.atomic import atomic_write_text
    from acezoo.studies.summary import summarise

    restricted = seeds is not None or bool(only)
    whole = summarise(study)
    view = summarise(study, seeds, only) if restricted else whole
    if not view.data.get("trials") and not view.data.get("samples"):
        part = f" of {' '.join(only) or 'any contender'}, seeds {seeds or study.spec.seeds}" if restricted else ""
        raise OptionError(f"{study.source}: no finished trial{part} under {study.records / 'results'} yet; "
                          f"run `acezoo study {study.source}` first")
    out = out or study.records
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.md", whole.markdown)
    atomic_write_text(out / "summary.json", json.dumps(whole.data, indent=1, default=str) + "\n")
    if plot_to is None:  # the records' picture: the whole study
        _plot(study, whole, (), None, out, plot)
    else:  # the printed part (of the contenders `plot`, if given), drawn where asked
        _plot(study, view, only, plot_to, out, plot)
    if not quiet:
        print(view.markdown)
        if restricted:
            print(f"(printed: {' '.join(only) or 'every contender'}, seeds {view.data['seeds']}; "
                  f"{out / 'results.md'} and summary.json hold the whole study)", file=sys.stderr)
    return 0


def _plot(study, summary, only, plot_to: Path | None, out: Path, plot: tuple[str, ...]) -> None:  # noqa: ANN001
    """Draw ``summary``'s seeds (of the contenders ``only``, all if empty) to ``plot_to``, or to
    the records' default picture."""
    from acezoo.studies.plots import plot_curves
    from acezoo.studies.records import collect

    if study.spec.report.samples is not None:
        from acezoo.studies.samples import plot_samples

        plot_samples(study, summary.data["seeds"], plot_to or out / "samples.png")
    else:
        names = [c.name for c in study.spec.contenders if not only or c.name in only]
        plot_curves(collect(study.records, names, summary.data["seeds"]), plot_to or out / "curves.png", plot)


def cmd_study(args: argparse.Namespace) -> int:
    from acezoo.studies.loader import load_study
    from acezoo.studies.runner import plan_trials, run_study

    study = load_study(args.study, check_trials=not args.summary)
    if args.records:
        study = dataclasses.replace(study, records=Path(args.records))
    if args.summary:
        return write_summary(study, args.seeds, args.only, plot_to=args.plot_to, plot=tuple(args.plot))
    trials = plan_trials(study, args.only, args.seeds)
    print(f"study {study.name}: {len(trials)} trials ({len({c for c, _ in trials})} contenders x "
          f"{len({s for _, s in trials})} seeds) of {study.base}; records in {study.records}", file=sys.stderr)
    run = run_study(study, address=args.address, storage=args.storage, only=args.only, seeds=args.seeds,
                    progress=not args.no_progress, max_failures=args.max_failures, num_cpus=args.cpus,
                    log=lambda line: print(line, file=sys.stderr))
    taken = f", {len(run.continued)} final in the study it continues" if run.continued else ""
    print(f"{len(run.trained)} trained, {len(run.kept)} kept from earlier runs{taken}", file=sys.stderr)
    return write_summary(study, args.seeds, args.only)


def add_study_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    s = sub.add_parser(
        "study", parents=parents, help="run a study (contenders x seeds) on Ray Tune, or summarise it",
        description="Train every (contender, seed) trial of STUDY (a YAML file, see zoo_studies/) on Ray Tune, "
        "then print and write its tables. Running it again resumes: finished trials are kept, interrupted ones "
        "continue from their last epoch. Needs the studies extra: pip install \"acezoo[studies]\".")
    s.add_argument("study", help="study file (YAML)")
    s.add_argument("--summary", action="store_true", help="only tabulate the finished trials (no training, no Ray)")
    s.add_argument("--only", nargs="+", default=[], metavar="CONTENDER", help="only these contenders")
    s.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="only these seeds (default: the study's)")
    s.add_argument("--address", help="join a running Ray cluster (e.g. auto, or HEAD_IP:6379); default: a local one")
    s.add_argument("--storage", help="folder (shared by every node) or URI (s3://..., gs://...) for the trials' "
                   "checkpoints (default: <records>/tune)")
    s.add_argument("--records", help="folder of the trial records and tables (default: the study's records:)")
    s.add_argument("--cpus", type=int, help="CPUs of the local Ray cluster (default: all)")
    s.add_argument("--max-failures", type=int, default=3, help="retries of a trial whose worker dies (default 3)")
    s.add_argument("--plot", nargs="+", default=[], metavar="CONTENDER",
                   help="with --summary: plot the curves of these contenders (in this order)")
    s.add_argument("--plot-to", type=Path, metavar="PNG", help="with --summary: write the plot here instead of "
                   "<records>/curves.png (samples.png for a sample-efficiency study)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_study)
