"""The ``acezoo`` command line: train, eval, prepare, list, register, info, sync, schema, study.

User errors (bad config, bad checkpoint) print one message and exit with status 2, with no
traceback; Ctrl-C during training writes a checkpoint and exits with status 130.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from acezoo._version import __version__
from acezoo.errors import AcezooError, ConfigError

__all__ = ["main"]


def _print_metrics(metrics: dict[str, Any], duals_label: str | None = None) -> None:
    test = metrics["test"]
    unit = f" [{metrics['unit']}]" if metrics.get("unit") else ""
    for name in test["pruned"]:
        print(f"test {name}{unit}: pruned (equivariant) {test['pruned'][name]:.6g} | full (with gamma) {test['full'][name]:.6g}")
    if "equivariance_error" in metrics:
        e = metrics["equivariance_error"]
        print(f"equivariance error: pruned {e['pruned']:.2e} | full {e['full']:.2e}")
    label = duals_label or f"selected epoch {metrics.get('duals_epoch', metrics.get('best_epoch'))}"
    _print_duals(metrics, label)
    last = metrics.get("last_epoch")
    if last:
        _print_duals(last, f"last epoch {last['epoch']}, not selected")
    if metrics.get("branches_pruned_at_epoch"):
        print(f"branches pruned after epoch {metrics['branches_pruned_at_epoch']} (constraints.prune_tol)")


def _print_duals(values: dict[str, Any], label: str) -> None:
    """One line each for the gammas, multipliers and slacks in ``values``, labelled by their epoch."""
    for key in ("gammas", "multipliers", "slacks"):
        if values.get(key):
            print(f"{key} ({label}): " + ", ".join(f"{k}={v:.4g}" for k, v in values[key].items()))


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from acezoo.config.loader import load_config
    from acezoo.run import TrainingInterrupted, train

    overrides = list(args.overrides)
    try:
        if args.resume:
            if args.config is not None:
                overrides.insert(0, args.config)
            result = train(resume=args.resume, overrides=tuple(overrides),
                           progress=False if args.no_progress else None, log=_log)
        else:
            if args.config is None:
                raise SystemExit("acezoo train: give a CONFIG (a YAML file or zoo config name) or --resume RUN_DIR")
            config = load_config(args.config, overrides, imports=args.imports)
            if args.device:
                config.train.device = args.device
            try:
                result = train(config, run_dir=args.run_dir, progress=False if args.no_progress else None, log=_log)
            except ConfigError as exc:  # e.g. a block pattern that matches no block
                raise exc.with_source(args.config) from None
    except TrainingInterrupted as exc:
        print(f"\ninterrupted at epoch {exc.epoch}, step {exc.step}; checkpoint written to {exc.run_dir}", file=sys.stderr)
        print(f"continue with: acezoo train --resume {exc.run_dir}", file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return 0
    m = result.metrics
    print(f"run: {result.run_dir}")
    print(f"selected epoch {m['best_epoch']} of {m['epochs_run']} on {m['selected_on']} = {m['best_value']:.6g} "
          f"({m['wall_time_s']:.1f} s on {m['device']})")
    _print_metrics(m)
    return 0


def check_eval_overrides(overrides: list[str]) -> tuple[str, ...]:
    """``acezoo eval``'s overrides when each is ``data.KEY=VALUE`` with ``KEY`` not ``dataset``:
    the data may change (e.g. a larger test split), the model, constraints and training may not."""
    from acezoo.errors import OptionError

    for text in overrides:
        key = text.partition("=")[0].strip()
        if "=" not in text or not key.startswith("data.") or key == "data.":
            raise OptionError(f"acezoo eval: override {text!r} is not allowed; allowed: data.KEY=VALUE (e.g. "
                              "data.n_test=5000); the model, constraints and training stay as trained")
        if key == "data.dataset":
            raise OptionError(f"acezoo eval: override {text!r} is not allowed: a model is scored on the data set it "
                              "was trained for (other data.* keys may change, e.g. data.n_test=5000)")
    return tuple(overrides)


def cmd_eval(args: argparse.Namespace) -> int:
    from acezoo.symmetry import symmetry_for
    from acezoo.training.checkpoint import load_run
    from acezoo.training.device import resolve_device
    from acezoo.training.evaluate import score
    from acezoo.training.perturb import check_seed, format_perturbed, parse_perturbation, perturbed_metrics
    from acezoo.training.trainer import build_data

    noises = [parse_perturbation(text) for text in args.perturb]  # bad values fail before any work
    seed = check_seed(args.perturb_seed)
    overrides = check_eval_overrides(args.overrides)
    config, model = load_run(args.checkpoint, overrides)
    device = resolve_device(args.device or "auto")
    model = model.to(device)
    data = build_data(config)
    split = getattr(data, args.split)
    sym = symmetry_for(config.model)
    batch_size = max(500, config.train.batch_size)
    metrics = score(model, split, data.task, sym, device, batch_size)
    if data.info.get("unit"):
        metrics["unit"] = data.info["unit"]
    metrics["gammas"] = model.gamma_values()
    if noises:
        metrics["perturbed"] = perturbed_metrics(model, split, data.task, noises, seed, device, batch_size)
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), "split": args.split, "samples": len(split),
                          "overrides": list(overrides), **metrics}, indent=2))
        return 0
    print(f"checkpoint: {args.checkpoint} ({config.model.arch}, {config.data.dataset}, mode {config.constraints.mode})")
    print(f"split: {args.split} ({len(split)} samples{', ' + ' '.join(overrides) if overrides else ''})")
    _print_metrics(metrics, duals_label="the checkpoint's selected weights")
    for line in format_perturbed(metrics.get("perturbed", []), args.split, metrics.get("unit")):
        print(line)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    import time

    from acezoo.config.loader import load_config
    from acezoo.training.trainer import build_data

    config = load_config(args.config, list(args.overrides), imports=args.imports)
    t0 = time.perf_counter()
    data = build_data(config, progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    sizes = " / ".join(f"{len(getattr(data, s))}" for s in ("train", "val", "test"))
    print(f"{config.data.dataset}: train / val / test = {sizes} samples, built in {seconds:.1f} s")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from acezoo import registry
    from acezoo.config.loader import load_config, zoo_config_paths

    if args.pretrained or args.registered:
        from acezoo.hub.models import list_models

        infos = list_models(args.pattern, pretrained=args.pretrained, tracking_uri=args.tracking_uri)
        print(_table(infos) if infos else "no models")
        return 0

    print("architectures:")
    for name, e in sorted(registry.architectures().items()):
        print(f"  {name:16s} symmetry={e.symmetry:12s} {e.description}")
    print("datasets:")
    for name, e in sorted(registry.datasets().items()):
        print(f"  {name:16s} {e.description}")
    print("zoo configs:")
    for name, path in zoo_config_paths().items():
        try:
            c = load_config(path)
            desc = f"arch={c.model.arch} dataset={c.data.dataset} mode={c.constraints.mode}"
        except AcezooError as exc:
            desc = f"(invalid: {exc})"
        print(f"  {name:28s} {desc}")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from acezoo.hub.models import register

    info = register(args.checkpoint, args.name, alias=args.alias, tracking_uri=args.tracking_uri)
    aliases = f" (aliases: {', '.join(info.aliases)})" if info.aliases else ""
    print(f"registered {info.ref}{aliases}: {info.arch} on {info.dataset}, mode {info.mode}, "
          f"test {info.metric} pruned {info.test_pruned:.6g}")
    return 0


def _table(infos: list[Any]) -> str:
    rows = [("name", "version", "arch", "task", "mode", "metric", "test pruned", "test full", "params")]
    for i in infos:
        metric = f"{i.metric} ({i.unit})" if i.metric and getattr(i, "unit", "") else (i.metric or "-")
        rows.append((i.name, "shipped" if i.version == 0 else str(i.version), i.arch, i.dataset, i.mode, metric,
                     f"{i.test_pruned:.4g}", f"{i.test_full:.4g}", f"{i.params:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def cmd_info(args: argparse.Namespace) -> int:
    from acezoo.hub.models import model_card

    print(model_card(args.name, tracking_uri=args.tracking_uri))
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from acezoo.hub.sync import sync_run

    r = sync_run(args.run_dir, tracking_uri=args.tracking_uri, experiment=args.experiment)
    final = ", the final metrics" if r.final else ""
    print(f"synced {args.run_dir} to {r.uri}: run {r.run_id} ({'new' if r.created else 'existing'}, experiment "
          f"{r.experiment}); sent {r.params} params, {r.epochs} of {r.total_epochs} epochs{final}, {r.artifacts} "
          f"artifacts; status {r.status}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    if args.kind == "study":
        from acezoo.studies.schema import StudySpec

        print(json.dumps(StudySpec.model_json_schema(), indent=2))
        return 0
    from acezoo.config.schema import ZooConfig

    print(json.dumps(ZooConfig.model_json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="acezoo", description="Approximately equivariant networks trained with ACE.")
    p.add_argument("--version", action="version", version=f"acezoo {__version__}")
    sub = p.add_subparsers(dest="command", required=True,
                           metavar="{train,eval,prepare,list,register,info,sync,schema,study}")
    plugins = argparse.ArgumentParser(add_help=False)
    plugins.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                         help="import MODULE first (repeatable), e.g. mymod for an architecture or data set "
                         "registered in mymod.py in the current folder; `acezoo train` records it in the run's "
                         "config (imports:), so that eval, --resume and acezoo.load import it again")

    t = sub.add_parser("train", parents=[plugins], help="train a zoo config", description="Train CONFIG (a YAML file or zoo config name).")
    t.add_argument("config", nargs="?", help="YAML config file or zoo config name")
    t.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=10 constraints.mode=resilient")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    t.add_argument("--run-dir", type=Path, help="write the run here instead of <train.output_dir>/<name>-<time>")
    t.add_argument("--device", help="override train.device (auto, cpu, cuda, cuda:N)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", parents=[plugins], help="evaluate a checkpoint directory")
    e.add_argument("checkpoint", type=Path, help="run directory written by `acezoo train`")
    e.add_argument("overrides", nargs="*", metavar="data.KEY=VALUE",
                   help="score on data other than the run's, e.g. data.n_test=5000 (a larger test split); only "
                   "data.* keys, and not data.dataset: the model is scored as trained")
    e.add_argument("--split", choices=("train", "val", "test"), default="test")
    e.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--perturb", action="append", default=[], metavar="noise=SIGMA",
                   help="also score on inputs with N(0, SIGMA^2) noise (pos and vel of graphs, pixels of images; "
                   "targets untouched); repeat for several levels")
    e.add_argument("--perturb-seed", type=int, default=0, metavar="N", help="seed of the --perturb noise (default 0)")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("prepare", parents=[plugins], help="build (and cache) a config's data set before training",
                       description="Build the data set of CONFIG (parse / simulate and cache it) and print its sizes; "
                       "useful before a multi-GPU run, so that the ranks load a ready cache.")
    d.add_argument("config", help="YAML config file or zoo config name")
    d.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.subset=full")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_prepare)

    ls = sub.add_parser("list", parents=[plugins], help="list architectures, datasets and zoo configs (or models)")
    ls.add_argument("--pretrained", action="store_true", help="list the pretrained models shipped with acezoo")
    ls.add_argument("--registered", action="store_true", help="list the models in the registry")
    ls.add_argument("--pattern", default="*", help="glob on model names (with --pretrained/--registered)")
    ls.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or the local store)")
    ls.set_defaults(func=cmd_list)

    r = sub.add_parser("register", parents=[plugins], help="register a checkpoint as a named model version")
    r.add_argument("checkpoint", help="run directory written by `acezoo train`, or an MLflow run id")
    r.add_argument("--name", required=True, help="model name, e.g. egnn-nbody-ace")
    r.add_argument("--alias", help="alias to point at this version, e.g. champion")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or the local store)")
    r.set_defaults(func=cmd_register)

    i = sub.add_parser("info", parents=[plugins], help="print the model card of a registered or pretrained model")
    i.add_argument("name", help="NAME, NAME@alias or NAME/version")
    i.add_argument("--tracking-uri", help="MLflow tracking URI")
    i.set_defaults(func=cmd_info)

    y = sub.add_parser("sync", parents=[plugins], help="upload a run directory to a tracking server",
                       description="Send what the tracking server lacks of RUN_DIR (params, history, final metrics, "
                       "artifacts, status), e.g. after the server was down at the end of the run. Continues the "
                       "run's MLflow run when the server has it; running it twice sends nothing twice.")
    y.add_argument("run_dir", type=Path, help="run directory written by `acezoo train`")
    y.add_argument("--tracking-uri", help="MLflow tracking URI (default: the one the run logged to, else "
                   "train.tracking_uri, $MLFLOW_TRACKING_URI or the local store)")
    y.add_argument("--experiment", help="MLflow experiment (default: the run's train.experiment)")
    y.set_defaults(func=cmd_sync)

    s = sub.add_parser("schema", parents=[plugins], help="print the JSON Schema of zoo configs (or of study files)")
    s.add_argument("kind", nargs="?", choices=("config", "study"), default="config",
                   help="config: zoo configs (default); study: study files (zoo_studies/*.yaml)")
    s.set_defaults(func=cmd_schema)

    from acezoo.studies.command import add_study_parser

    add_study_parser(sub, [plugins])
    return p


def _show_data_log() -> None:
    """Data set builders report first builds and cache loads on the ``acezoo.data`` logger;
    tracking and the registry report outages on ``acezoo.hub`` (as ``warning: ...``)."""
    import logging

    logger = logging.getLogger("acezoo.data")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    hub = logging.getLogger("acezoo.hub")
    if not hub.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        hub.addHandler(handler)


def _import_plugins(modules: list[str]) -> None:
    """Import the ``--import`` modules (they register architectures or data sets)."""
    if not modules:
        return
    from acezoo.errors import OptionError
    from acezoo.plugins import PluginImportError, import_modules

    try:
        import_modules(modules)
    except PluginImportError as exc:
        raise OptionError(f"--import: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    _show_data_log()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may come after options (`train CONFIG --no-progress a.b=1`)
    if extra and args.command in ("train", "prepare", "eval") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        _import_plugins(args.imports)
        return int(args.func(args))
    except AcezooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `acezoo info NAME | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
