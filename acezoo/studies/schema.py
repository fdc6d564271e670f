"""The study file: named contenders x seeds on one base zoo config, one budget, one selection rule.

A study asks "which training recipe gives the best model on this problem?" fairly: every
contender trains on the same data with the same budget (``common`` overrides), over the same
seeds, and is judged on validation data only (the mean over seeds of each run's best
validation value of its selected model); the test metric is reported beside it, never used.

.. code-block:: yaml

    name: egnn-nbody
    base: zoo_configs/egnn_nbody_equality.yaml
    common: [train.epochs=500, train.eval_every=5, train.patience=150]
    contenders:
      - {name: strict, overrides: [constraints.mode=strict], note: the equivariant network alone}
      - {name: ace, overrides: [constraints.mode=equality]}
    seeds: [0, 1, 2]
    records: docs/studies/nbody-egnn/ace-nbody
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from acezoo.config.base import StrictModel

__all__ = ["StudySpec", "ContenderSpec", "TrialResources", "ReportSpec", "SamplesReport", "NAME_PATTERN"]

#: names of studies and contenders: they become file names (``<contender>-s<seed>.json``)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]*=")


def _check_overrides(values: list[str]) -> list[str]:
    for i, text in enumerate(values):
        if not _OVERRIDE.match(text):
            raise ValueError(f"item {i} ({text!r}) must look like key=value, e.g. train.epochs=500")
    return values


class ContenderSpec(StrictModel):
    """One training recipe: overrides of the base config (after the study's ``common`` ones)."""

    name: str = Field(pattern=NAME_PATTERN, description="unique name; records are <name>-s<seed>.json")
    overrides: list[str] = Field(default_factory=list, description="key=value overrides of the base config")
    note: str = Field("", description="one line saying what the contender is")

    _overrides_ok = field_validator("overrides")(_check_overrides)


class TrialResources(StrictModel):
    """What one trial (one contender, one seed) holds while it trains."""

    cpus: int = Field(1, ge=1, description="CPU cores, also the trial's torch threads")
    gpus: float = Field(0.0, ge=0.0, le=1.0, description="0: train on CPU; 1 (or a fraction): one GPU")


class SamplesReport(StrictModel):
    """A sample-efficiency report: contenders named ``<kind>-n<size>`` (e.g. ``strict-n5000``)
    compared per training-set size, with the point of the base study's size taken from its records."""

    base_records: str | None = Field(None, description="records of the study that gives the base size's point")
    base_size: int = Field(3000, ge=1, description="training-set size of that study")
    base_contenders: dict[str, str] = Field(
        default_factory=dict, description="that study's contender -> kind here (e.g. bounded-nupi-prune: ace)")
    model: str = Field("EGNN", description="the architecture's name in the plot's title")


class ReportSpec(StrictModel):
    """How the summary shows the metric."""

    scale: float = Field(1.0, gt=0, description="the test metric is multiplied by this in tables")
    unit: str = Field("", description="the unit after scaling, e.g. 'MSE x 1e-2'")
    baseline: str | None = Field("strict", description="the contender every other is compared with (paired by seed)")
    samples: SamplesReport | None = Field(None, description="report as a sample-efficiency study")


class StudySpec(StrictModel):
    """A study: ``base`` zoo config, ``common`` overrides (budget, data), contenders, seeds."""

    name: str = Field(pattern=NAME_PATTERN, description="the study's name (the Tune experiment's)")
    description: str = Field("", description="what the study asks")
    base: str = Field(description="the base zoo config: a path (relative to the repository or the study file) or a "
                                  "zoo config name")
    common: list[str] = Field(default_factory=list, description="key=value overrides of every trial (budget, data)")
    contenders: list[ContenderSpec] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    selection: Literal["best_val"] = Field(
        "best_val", description="how contenders are ranked: the mean over seeds of each trial's best validation value "
                                "(validation data only; test data never selects)")
    resources: TrialResources = Field(default_factory=TrialResources)
    report: ReportSpec = Field(default_factory=ReportSpec)
    records: str | None = Field(None, description="folder of the trial records (default studies/<name>)")
    status: Literal["current", "superseded"] = Field(
        "current", description="superseded: a later study answers the same question better (more seeds, the current "
                               "defaults); its records stay for the record")
    superseded_by: str | None = Field(None, pattern=NAME_PATTERN, description="the study that supersedes this one")
    imports: list[str] = Field(default_factory=list, description="modules to import (plugins)")
    continues: str | None = Field(
        None, description="an earlier study file whose trials this one continues under a larger train.epochs: a "
                          "trial that stopped early there is final here, one that ran its whole budget resumes from "
                          "its last state (see acezoo.studies.continuation)")

    _common_ok = field_validator("common")(_check_overrides)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds

    @model_validator(mode="after")
    def _unique_names(self) -> "StudySpec":
        names = [c.name for c in self.contenders]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"contender names must be unique; repeated: {', '.join(dupes)}")
        if (self.status == "superseded") != (self.superseded_by is not None):
            raise ValueError("a superseded study names the study that supersedes it (status: superseded with "
                             "superseded_by: NAME), and only a superseded one does")
        if self.report.baseline is not None and self.report.samples is None and self.report.baseline not in names:
            raise ValueError(f"report.baseline {self.report.baseline!r} is not a contender "
                             f"(contenders: {', '.join(names)}); set it to one or to null")
        return self

    def contender(self, name: str) -> ContenderSpec:
        return next(c for c in self.contenders if c.name == name)
