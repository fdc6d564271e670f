"""Spec fields shared by several architectures (pydantic only: no torch)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

__all__ = ["BranchKind", "BRANCH_KINDS", "BRANCH_DESCRIPTION", "EGNNBranchKind", "EGNN_BRANCH_DESCRIPTION",
           "node_features_field"]

BranchKind = Literal["plain", "bounded", "bounded_fixed"]
BRANCH_KINDS: tuple[str, ...] = ("plain", "bounded", "bounded_fixed")
BRANCH_DESCRIPTION = (
    "Symmetry-breaking branch: `plain` (an unconstrained MLP / conv, whose weights can grow while gamma "
    "shrinks), `bounded` (every layer a batch norm, then a spectrally normalised linear map: the weight "
    "matrices cannot grow; the ACE authors' EGNO/SchNet branch) or `bounded_fixed` (the same without "
    "batch-norm affine parameters and biases: a fixed output scale, so gamma alone sets the size of the "
    "symmetry breaking)."
)

EGNNBranchKind = Literal["plain", "bounded", "bounded_fixed", "stream"]
EGNN_BRANCH_DESCRIPTION = BRANCH_DESCRIPTION + (
    " EGNN only, `stream`: the ACE authors' EGNO branch form, a separate stream that does not read the "
    "equivariant features: the feature branch of each layer is a batch norm and a spectrally normalised "
    "linear map of a linear map of the raw node inputs, absolute positions and velocities; the coordinate "
    "branch is batch norm, spectral-normalised linear, SiLU, batch norm, spectral-normalised linear of a "
    "linear map of the layer's current absolute positions."
)


def node_features_field() -> Any:
    """The ``node_features`` spec field shared by the point-cloud architectures."""
    return Field(
        default_factory=list,
        description="Extra per-node scalar inputs, read from the batch by name, one column each (e.g. `[height]` "
        "on mocap_run: the joint's height / 10, the EGNO protocol's second node feature). They enter as "
        "invariants, so a field that is not invariant (the height) leaves the model equivariant only to what "
        "keeps it unchanged (rotations about the vertical axis, horizontal translations).",
    )
