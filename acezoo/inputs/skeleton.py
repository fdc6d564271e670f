"""Motion capture inputs: the CMU skeleton's edges from the shipped data, and a ready batch.

The MoCap models (``*-mocap-*``) read the 31 joints of CMU subject 9's skeleton with the
skeleton's own edges: the 30 bones and the two-hop neighbours, both directions (130 directed
edges), ``edge_attr`` 1 for a bone and 2 for a two-hop pair, and (where the model's
``node_features`` name it) ``height``, each joint's vertical coordinate / 10::

    model = acezoo.load("egnn-mocap-ace")
    x = acezoo.mocap_input(pos, vel)        # pos, vel: (B, 31, 3) (or (31, 3))
    with torch.no_grad():
        future = x.unstack(model(x))         # (B, 31, 3): 30 frames later
"""
from __future__ import annotations

from pathlib import Path

import torch

from acezoo.inputs.point_clouds import PointCloudBatch, point_cloud

__all__ = ["mocap_skeleton", "mocap_input", "MOCAP_JOINTS"]

MOCAP_JOINTS = 31


def mocap_skeleton(path: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(edge_index (2, 130) long, edge_attr (130, 1) float32)`` of the CMU skeleton.

    Read from ``path`` (a ``cmu_mocap_run.npz``), else ``$ACEZOO_MOCAP``, else the copy shipped
    with acezoo: the same edges the ``mocap_run`` data set gives every sample.
    """
    from acezoo.data.mocap import N_JOINTS, resolve_mocap_path, load_mocap, skeleton_edges
    from acezoo.data.specs import MocapSpec

    arrays = load_mocap(resolve_mocap_path(MocapSpec(path=None if path is None else str(path))))
    return skeleton_edges(arrays["edges"], N_JOINTS)


def mocap_input(pos: torch.Tensor, vel: torch.Tensor, *, path: str | Path | None = None) -> PointCloudBatch:
    """A batch of skeleton poses for the MoCap models.

    Args:
        pos: joint positions ``(B, 31, 3)`` (or ``(31, 3)`` for one pose), in the data file's units.
        vel: per-frame displacements ``X[t+1] - X[t]``, same shape.
        path: the data file whose skeleton to use (default: as :func:`mocap_skeleton`).

    The batch holds the skeleton's ``edge_index`` and ``edge_attr`` and the ``height`` node field
    (``pos[..., 1] / 10``), so it fits every MoCap model, whether or not it reads the height.
    """
    pos = torch.as_tensor(pos)
    if pos.dim() not in (2, 3) or pos.shape[-2:] != (MOCAP_JOINTS, 3):
        raise ValueError(f"pos must have shape (B, {MOCAP_JOINTS}, 3) or ({MOCAP_JOINTS}, 3): the {MOCAP_JOINTS} "
                         f"joints of the CMU skeleton; got {tuple(pos.shape)}")
    edge_index, edge_attr = mocap_skeleton(path)
    edge_attr = edge_attr.to(pos.dtype) if pos.is_floating_point() else edge_attr
    return point_cloud(pos, vel, edge_index=edge_index, edge_attr=edge_attr, height=pos[..., 1:2] / 10.0)
