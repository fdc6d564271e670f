"""Model inputs from your own tensors, what each model reads, and the check of both.

- :func:`point_cloud`: point clouds (N-body and any graph of equal-size systems), with or
  without charges, edges and extra node fields;
- :func:`mocap_input` / :func:`mocap_skeleton`: poses of the CMU skeleton, with its edges from
  the shipped data;
- :func:`molecules`: atoms and positions (QM9);
- images need no helper: the group CNNs take a ``(B, C, H, W)`` tensor.

Every loaded model carries ``model.acezoo_inputs`` (:class:`~acezoo.inputs.describe.ModelInputs`:
the fields, shapes and units it reads and returns) and checks its input against it before any
layer runs (:mod:`acezoo.inputs.check`). The names are imported on first use.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["PointCloudBatch", "point_cloud", "mocap_input", "mocap_skeleton", "molecules", "ModelInputs",
           "check_input"]

_WHERE = {
    "PointCloudBatch": "acezoo.inputs.point_clouds",
    "point_cloud": "acezoo.inputs.point_clouds",
    "mocap_input": "acezoo.inputs.skeleton",
    "mocap_skeleton": "acezoo.inputs.skeleton",
    "molecules": "acezoo.inputs.atoms",
    "ModelInputs": "acezoo.inputs.describe",
    "check_input": "acezoo.inputs.check",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
