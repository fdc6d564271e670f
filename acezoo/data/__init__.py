"""Built-in data sets (importing this module registers them).

Registration is lazy: the specs (:mod:`acezoo.data.specs`, pydantic and numpy) are registered
at once, the builders (torch, torch_geometric) are imported when a data set is built.
``from acezoo.data import DataBundle`` still works.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from acezoo.data.specs import AdvectionSpec, DigitsSpec, MocapSpec, NBodySpec, QM9Spec, UprightDigitsSpec
from acezoo.registry import lazy_builder, register_dataset

__all__ = ["DataBundle", "RegressionTask", "NBodySpec", "MocapSpec", "DigitsSpec", "UprightDigitsSpec",
           "AdvectionSpec", "QM9Spec"]

_BUILTIN = (
    ("nbody_charged", NBodySpec, "acezoo.data.nbody:build_nbody",
     "Charged N-body (5 particles, frame 30 -> 40), optionally in an external field."),
    ("mocap_run", MocapSpec, "acezoo.data.mocap:build_mocap",
     "CMU motion capture, subject 9 run (31 joints): predict positions 30 frames ahead (EGNO protocol)."),
    ("digits_rot", DigitsSpec, "acezoo.data.digits:build_digits_rot",
     "Handwritten digits (scikit-learn), randomly rotated by 90-degree steps (and mirrored)."),
    ("digits_upright", UprightDigitsSpec, "acezoo.data.digits:build_digits_upright",
     "Handwritten digits (scikit-learn) as written: orientation matters (6 vs 9)."),
    ("advection_2d", AdvectionSpec, "acezoo.data.advection:build_advection",
     "2-D field under diffusion (+ constant wind), k steps ahead; wind breaks rot90 symmetry."),
    ("qm9", QM9Spec, "acezoo.data.qm9:build_qm9", "QM9 molecular property regression (MAE in the target's unit)."),
)
for _name, _spec, _target, _description in _BUILTIN:
    register_dataset(_name, spec=_spec, description=_description)(lazy_builder(_target))

_BUNDLE = {"DataBundle": "acezoo.data.bundle", "RegressionTask": "acezoo.data.bundle"}


def __getattr__(name: str) -> Any:
    """``DataBundle`` and ``RegressionTask``, imported on first use (they need torch)."""
    if name in _BUNDLE:
        return getattr(import_module(_BUNDLE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
