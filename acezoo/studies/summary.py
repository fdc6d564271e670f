"""A study's tables from its trial records: one row per contender, paired-seed comparisons.

Selection uses validation data only: a contender's score is the mean over seeds of each
trial's best validation value (of the model the trial selects on); the winner is the relaxed
contender with the lowest score among those with every seed finished and selected on the same
validation quantity as the baseline. Test metrics are reported beside, never used.

Paired comparison with the baseline, per contender, over the seeds both finished: the mean and
standard deviation of the per-seed difference ``d_s = test_s(contender) - test_s(baseline)``
(of each one's delivered model: pruned, or full for contenders selected on the full model),
how many seeds the contender is lower on, and the exact two-sided sign-test p-value
``p = min(1, 2 * sum_{k <= min(w, n - w)} C(n, k) / 2^n)``.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from acezoo.studies.records import collect
from acezoo.studies.loader import Study

__all__ = ["Summary", "summarise", "contender_table", "paired_rows", "paired_table", "sign_test_p", "delivered_test", "winner_line"]


def _mean_std(values: list[float], scale: float) -> str:
    values = [v * scale for v in values]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4g} +- {sd:.2g}"


def delivered_test(record: dict[str, Any]) -> float:
    """The test metric of the model the trial delivers: full if it selects on the full model, else pruned."""
    return record["test_full"] if str(record.get("selected_on", "")).startswith("val_full") else record["test_pruned"]


def sign_test_p(wins: int, n: int) -> float:
    """Exact two-sided sign test: the chance of a split at least as uneven as ``wins`` of ``n`` under a fair coin."""
    if n == 0:
        return 1.0
    k = min(wins, n - wins)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def contender_table(records: list[dict[str, Any]], contenders: Sequence[str], seeds: Sequence[int], scale: float,
                    unit: str, baseline: str | None) -> tuple[str, str | None, list[dict[str, Any]]]:
    """The markdown table, the winner (validation only) and the rows as data."""
    unit_s = f" ({unit})" if unit else ""
    lines = [f"| contender | seeds | best val{unit_s} (selection) | test, pruned{unit_s} | test, full{unit_s} | "
             "best epoch | wall s/run | max abs gamma (selected epoch) |", "|---|---|---|---|---|---|---|---|"]
    rows: list[dict[str, Any]] = []
    means: dict[str, float] = {}
    selected_on = {r["contender"]: r["selected_on"] for r in records if r["selected_on"]}
    for name in contenders:
        rs = [r for r in records if r["contender"] == name]
        if not rs:
            continue
        if len(rs) == len(seeds):
            means[name] = statistics.mean(r["best_val"] for r in rs)
        gam = max((abs(g) for r in rs for g in r["gammas"].values()), default=None)
        n_div = sum(1 for r in rs if r.get("diverged"))
        lines.append(
            f"| {name} | {len(rs)}{f' ({n_div} diverged)' if n_div else ''} | "
            f"{_mean_std([r['best_val'] for r in rs], scale)} | {_mean_std([r['test_pruned'] for r in rs], scale)} | "
            f"{_mean_std([r['test_full'] for r in rs], scale)} | {statistics.mean(r['best_epoch'] for r in rs):.0f} | "
            f"{statistics.mean(r['wall_s'] for r in rs):.0f} | {'-' if gam is None else f'{gam:.3g}'} |")
        rows.append({"contender": name, "seeds": [r["seed"] for r in rs], "diverged": n_div,
                     "selected_on": selected_on.get(name, ""),
                     "best_val": [r["best_val"] for r in rs], "test_pruned": [r["test_pruned"] for r in rs],
                     "test_full": [r["test_full"] for r in rs], "best_epoch": [r["best_epoch"] for r in rs],
                     "wall_s": [r["wall_s"] for r in rs], "max_abs_gamma": gam,
                     "score": means.get(name)})
    same_rule = selected_on.get(baseline) if baseline else None
    # strict contenders: no gamma in any run (a diverged run may stop before it records gammas)
    strict = {n for n in contenders if all(not r["gammas"] and not r.get("diverged")
                                           for r in records if r["contender"] == n)}
    candidates = {k: v for k, v in means.items() if k != baseline and k not in strict and math.isfinite(v)
                  and (same_rule is None or selected_on.get(k) == same_rule)}
    winner = min(candidates, key=candidates.__getitem__) if candidates else None
    return "\n".join(lines), winner, rows


def paired_rows(records: list[dict[str, Any]], contenders: Sequence[str], baseline: str,
                scale: float) -> list[dict[str, Any]]:
    """Each contender against ``baseline`` on the seeds both finished (see the module's docstring)."""
    base = {r["seed"]: r for r in records if r["contender"] == baseline}
    out = []
    for name in contenders:
        if name == baseline:
            continue
        pairs = [(r, base[r["seed"]]) for r in records if r["contender"] == name and r["seed"] in base]
        if not pairs:
            continue
        d_test = [(delivered_test(a) - delivered_test(b)) * scale for a, b in pairs]
        d_val = [(a["best_val"] - b["best_val"]) * scale for a, b in pairs]
        wins = sum(1 for d in d_test if d < 0)
        out.append({"contender": name, "seeds": [a["seed"] for a, _ in pairs], "test_diff": d_test, "val_diff": d_val,
                    "test_diff_mean": statistics.mean(d_test),
                    "test_diff_std": statistics.stdev(d_test) if len(d_test) > 1 else 0.0,
                    "val_wins": sum(1 for d in d_val if d < 0), "test_wins": wins,
                    "sign_test_p": sign_test_p(wins, len(d_test))})
    return out


def paired_table(rows: list[dict[str, Any]], baseline: str, unit: str) -> str:
    """The markdown table of :func:`paired_rows`: each contender's test difference to ``baseline``."""
    unit_s = f" ({unit})" if unit else ""
    lines = [f"| contender | paired seeds | test - {baseline}{unit_s}, mean +- std | lower on test | "
             "lower on validation | sign test p |", "|---|---|---|---|---|---|"]
    for r in rows:
        n = len(r["seeds"])
        lines.append(f"| {r['contender']} | {n} | {r['test_diff_mean']:+.3g} +- {r['test_diff_std']:.2g} | "
                     f"{r['test_wins']}/{n} | {r['val_wins']}/{n} | {r['sign_test_p']:.3g} |")
    return "\n".join(lines)


@dataclass
class Summary:
    """What ``acezoo study --summary`` prints and writes."""

    markdown: str
    data: dict[str, Any]
    winner: str | None


def winner_line(rows: list[dict[str, Any]], baseline: str | None, chosen: str) -> str:
    """The winner's line; where some contenders select on another validation quantity than the
    baseline (the full model's, say), it names the rule and those left out of the comparison."""
    rule = next((r["selected_on"] for r in rows if r["contender"] == baseline), "")
    other = [r["contender"] for r in rows
             if r["score"] is not None and r["contender"] != baseline and rule and r["selected_on"] != rule]
    if not other:
        return f"Lowest mean validation loss among ACE contenders with every seed: {chosen}"
    return (f"Lowest mean validation loss among ACE contenders with every seed that select on `{rule}` "
            f"as {baseline} does: {chosen} ({', '.join(other)}: selected on another quantity, not compared)")


def summarise(study: Study, seeds: Sequence[int] | None = None, only: Sequence[str] = ()) -> Summary:
    """The tables of ``study``'s finished trials (``seeds`` / ``only``: restrict to these)."""
    spec = study.spec
    seeds = list(seeds) if seeds is not None else list(spec.seeds)
    names = [c.name for c in spec.contenders if not only or c.name in only]
    records = collect(study.records, names, seeds)
    rep = spec.report
    overrides = " ".join(spec.common)
    head = (f"{spec.name}: base {spec.base}, overrides {overrides or '(none)'}; seeds {seeds}. "
            "Mean +- std over seeds; selection on validation only.")
    data: dict[str, Any] = {"study": spec.name, "base": spec.base, "common": spec.common, "seeds": seeds,
                            "scale": rep.scale, "unit": rep.unit, "baseline": rep.baseline, "trials": len(records)}
    if rep.samples is not None:
        from acezoo.studies.samples import samples_table

        table, rows = samples_table(study, seeds)
        data["samples"] = rows
        return Summary(f"{head}\n\n{table}\n", data, None)
    table, winner, rows = contender_table(records, names, seeds, rep.scale, rep.unit, rep.baseline)
    data.update(contenders=rows, winner=winner)
    chosen = winner if winner is not None else "none yet (no ACE contender has finished every seed)"
    text = f"{head}\n\n{table}\n\n{winner_line(rows, rep.baseline, chosen)}\n"
    if rep.baseline and any(r["contender"] == rep.baseline for r in records):
        paired = paired_rows(records, names, rep.baseline, rep.scale)
        data["paired"] = paired
        if paired:
            text += (f"\nPaired by seed against {rep.baseline} (each contender's delivered model: pruned, or full "
                     f"where it selects on the full model):\n\n{paired_table(paired, rep.baseline, rep.unit)}\n")
    return Summary(text, data, winner)
