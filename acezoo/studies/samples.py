"""Sample-efficiency summaries: test metric against training-set size, per kind of contender.

Contenders are named ``<kind>-n<size>`` (e.g. ``strict-n5000``, ``ace-n5000``); the point at
the base study's size (``report.samples.base_size``) comes from that study's records, under
the same budget and selection rule (``report.samples.base_contenders`` maps its contender
names to kinds).
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acezoo.studies.loader import Study
from acezoo.studies.records import collect

__all__ = ["samples_points", "samples_table", "plot_samples"]

KINDS = ("strict", "ace")


def samples_points(study: Study, seeds: Sequence[int]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Records by (kind, training-set size)."""
    spec, samples = study.spec, study.spec.report.samples
    assert samples is not None
    rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in collect(study.records, [c.name for c in spec.contenders], seeds):
        kind, n = r["contender"].rsplit("-n", 1)
        rows.setdefault((kind, int(n)), []).append(r)
    if samples.base_records:
        for r in collect(samples.base_records, list(samples.base_contenders), seeds):
            rows.setdefault((samples.base_contenders[r["contender"]], samples.base_size), []).append(r)
    return rows


def samples_table(study: Study, seeds: Sequence[int]) -> tuple[str, list[dict[str, Any]]]:
    """The markdown table (test metric of the pruned model, mean +- std; ACE / strict; validation) and its rows."""
    rows = samples_points(study, seeds)
    lines = ["| training trajectories | strict: test MSE | ACE (equality, pruned): test MSE | ACE / strict | "
             "strict: best val | ACE: best val | seeds |", "|---|---|---|---|---|---|---|"]
    data = []
    for n in sorted({n for _, n in rows}):
        cells, means, counts = [], {}, []
        for kind in KINDS:
            vals = [r["test_pruned"] for r in rows.get((kind, n), [])]
            if vals:
                m, sd = statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0
                means[kind] = m
                cells.append(f"{m:.5f} +- {sd:.5f}")
            else:
                cells.append("-")
            counts.append(str(len(vals)))
        vals = {k: [r["best_val"] for r in rows.get((k, n), [])] for k in KINDS}
        ratio = f"{means['ace'] / means['strict']:.3f}" if len(means) == 2 else "-"
        val_cells = [f"{statistics.mean(v):.5f}" if v else "-" for v in vals.values()]
        lines.append(f"| {n} | {cells[0]} | {cells[1]} | {ratio} | {val_cells[0]} | {val_cells[1]} | "
                     f"{'/'.join(counts)} |")
        data.append({"size": n, **{f"{k}_test": [r["test_pruned"] for r in rows.get((k, n), [])] for k in KINDS},
                     **{f"{k}_val": vals[k] for k in KINDS}})
    return "\n".join(lines), data


def plot_samples(study: Study, seeds: Sequence[int], path: Path) -> None:
    """Test metric (mean +- std over seeds) against training-set size, strict and ACE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = samples_points(study, seeds)
    sizes = sorted({n for _, n in rows})
    if not sizes:
        return
    model = study.spec.report.samples.model if study.spec.report.samples else ""
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, label in (("strict", f"strict {model}"), ("ace", "ACE (equality, pruned)")):
        pts = [(n, [r["test_pruned"] for r in rows[(kind, n)]]) for n in sizes if rows.get((kind, n))]
        if pts:
            ax.errorbar([n for n, _ in pts], [statistics.mean(v) for _, v in pts],
                        yerr=[statistics.stdev(v) if len(v) > 1 else 0.0 for _, v in pts], marker="o", capsize=3,
                        label=label)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("training trajectories")
    ax.set_ylabel("test MSE (mean +- std over seeds)")
    ax.set_title(f"{study.spec.name}: sample efficiency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
