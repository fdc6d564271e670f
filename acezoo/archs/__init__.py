"""Built-in architectures (importing this module registers them).

Registration is lazy: the specs (pydantic, :mod:`acezoo.archs.specs`) are registered at once,
the networks (torch, e3nn, torch_geometric) are imported only when a model is built, so that
validating a config or listing the zoo stays fast. ``from acezoo.archs import EGNN`` still works.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from acezoo.archs.specs import EGNNSpec, EGNOSpec, GCNNSpec, SE3TransformerSpec, SEGNNSpec
from acezoo.registry import lazy_builder, register_arch

__all__ = ["EGNN", "EGNNSpec", "EGNO", "EGNOSpec", "GCNN", "GCNNSpec", "SE3Transformer", "SE3TransformerSpec",
           "SEGNN", "SEGNNSpec"]

register_arch(
    "egnn",
    spec=EGNNSpec,
    symmetry="e3_points",
    description="E(n)-equivariant GNN (Satorras et al. 2021): dynamics (velocities) or molecules (atoms).",
    examples={
        "charge-feature": dict(charge_feature=True),
        "molecule": dict(node_input="atoms", edge_input="none", output="graph", coord_updates=False, edge_gate=True),
        "molecule-coords": dict(node_input="atoms", edge_input="none", output="graph", pool="mean", out_channels=2),
        "bounded-branch": dict(branch="bounded"),
        "stream-branch": dict(branch="stream"),
        "initial-distance": dict(initial_distance=True, branch="bounded"),
        # a cap small enough to act on the test inputs, so the symmetry tests exercise it
        "coord-clamp": dict(initial_distance=True, coord_clamp=1e-4),
        "molecule-initial-distance": dict(node_input="atoms", edge_input="none", output="graph", initial_distance=True),
        "molecule-stream-branch": dict(node_input="atoms", edge_input="none", output="graph", coord_updates=False,
                                       branch="stream"),
    },
)(lazy_builder("acezoo.archs.egnn:build_egnn"))

register_arch(
    "egno",
    spec=EGNOSpec,
    symmetry="e3_points",
    description="EGNO (Xu et al. 2024): EGNN layers with temporal Fourier convolutions, K future frames in one pass.",
    examples={  # small widths keep the registry-wide symmetry tests fast
        "small": dict(hidden=16, layers=2),
        "one-frame": dict(hidden=16, layers=2, frames=1, modes=1),
        # even K (a Nyquist mode), every mode kept, an odd time embedding, no edge input
        "even-frames": dict(hidden=16, layers=2, frames=4, modes=3, time_embedding=7, edge_input="none",
                            initial_distance=False),
        "plain-branch": dict(hidden=16, layers=2, branch="plain", branch_hidden=8),
        "bounded-branch": dict(hidden=16, layers=2, branch="bounded", coord_agg="sum"),
        # a cap small enough to act on the test inputs, so the symmetry tests exercise it
        "coord-clamp": dict(hidden=16, layers=2, coord_clamp=1e-4),
    },
)(lazy_builder("acezoo.archs.egno:build_egno"))

register_arch(
    "gcnn",
    spec=GCNNSpec,
    symmetry="image_group",
    description="Group-equivariant CNN (p4 / p4m) with lifting and group convolutions (Cohen & Welling 2016).",
    examples={"d4-dense": dict(group="D4", head="dense", channels=4), "d4-classify-mean": dict(group="D4", pool="mean"),
              "bounded-branch": dict(branch="bounded")},
)(lazy_builder("acezoo.archs.gcnn:build_gcnn"))

register_arch(
    "se3_transformer",
    spec=SE3TransformerSpec,
    symmetry="e3_points",
    description="SE(3)-Transformer (Fuchs et al. 2020) on e3nn: multi-head attention with TP keys/values.",
    examples={
        "molecule": dict(node_input="atoms", edge_input="none", output="graph", layers=2, channels=8),
        "tensor": dict(node_input="atoms", edge_input="none", output="tensor", layers=2, channels=[8, 4, 4],
                       max_degree=2),
        "bounded-branch": dict(branch="bounded", layers=2, channels=8),
    },
)(lazy_builder("acezoo.archs.se3_transformer:build_se3_transformer"))

register_arch(
    "segnn",
    spec=SEGNNSpec,
    symmetry="e3_points",
    description="Steerable E(3)-equivariant GNN (Brandstetter et al. 2022), degree <= 1, fused tensor products.",
    examples={
        "small": dict(hidden=8, layers=2),
        "e3nn-kernel": dict(hidden=8, layers=2, kernel="e3nn"),
        "plain-branch": dict(hidden=8, layers=2, branch="plain", branch_hidden=16),
        "bounded-branch": dict(hidden=8, layers=2, branch="bounded", branch_hidden=16),
        "no-edge-input": dict(hidden=6, layers=1, edge_input="none"),
    },
)(lazy_builder("acezoo.archs.segnn:build_segnn"))

_NETWORKS = {"EGNN": "acezoo.archs.egnn", "EGNO": "acezoo.archs.egno", "SEGNN": "acezoo.archs.segnn", "GCNN": "acezoo.archs.gcnn", "SE3Transformer": "acezoo.archs.se3_transformer"}


def __getattr__(name: str) -> Any:
    """The network classes, imported on first use."""
    if name in _NETWORKS:
        return getattr(import_module(_NETWORKS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
