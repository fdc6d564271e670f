"""The specs (pydantic schemas) of the built-in architectures.

Kept apart from the networks so that validating a config, listing the zoo or reading a model
card needs pydantic only: torch, e3nn and torch_geometric are imported when a model is built.
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from acezoo.archs.io import IOField, ModelIO, image_io, point_cloud_io, positions_out
from acezoo.config.base import ArchSpec
from acezoo.config.fields import (BRANCH_DESCRIPTION, EGNN_BRANCH_DESCRIPTION, BranchKind, EGNNBranchKind,
                                  node_features_field)

__all__ = ["EGNNSpec", "EGNOSpec", "GCNNSpec", "SE3TransformerSpec", "SEGNNSpec"]


class EGNNSpec(ArchSpec):
    """EGNN: positions per node from velocities (dynamics), or invariants per molecule (atoms)."""

    arch: Literal["egnn"] = "egnn"
    hidden: int = Field(64, ge=1, description="Width of node features and messages.")
    layers: int = Field(4, ge=1, description="Number of EGNN layers.")
    branch_hidden: int = Field(64, ge=1, description="Width of the symmetry-breaking branch MLPs.")
    branch: EGNNBranchKind = Field("plain", description=EGNN_BRANCH_DESCRIPTION)
    node_features: list[str] = node_features_field()
    coord_agg: str = Field("mean", pattern="^(mean|sum)$", description="Aggregation of coordinate messages: mean or sum.")
    edge_input: Literal["charge_product", "edge_attr", "none"] = Field(
        "charge_product",
        description="Edge input: `charge_product` (q_i q_j from `batch.charge`, the N-body protocol), "
        "`edge_attr` (the data set's invariant `batch.edge_attr`, e.g. bone / two-hop for motion capture) "
        "or `none`.",
    )
    edge_dim: int = Field(1, ge=1, description="Width of `batch.edge_attr` when edge_input is `edge_attr`.")
    initial_distance: bool = Field(
        False,
        description="Append |x_i - x_j|^2 of the *input* positions to every layer's edge input (invariant). "
        "The EGNN authors' N-body model does this (`main_nbody.py`: edge input [q_i q_j, |x_i^0 - x_j^0|^2]); "
        "without it only the first layer sees the input distances.",
    )
    coord_clamp: float | None = Field(
        None, gt=0,
        description="Cap the norm of each coordinate message d_ij phi_x(m_ij) at this value (null: no cap). "
        "The EGNN authors clamp each component of these messages to +-100 (`E_GCL.coord_model`), which is not "
        "rotation-equivariant once it acts; scaling a message by min(1, c / |message|) is, and bounds the "
        "position update the same way.",
    )
    charge_feature: bool = Field(
        False,
        description="Also feed each node's own charge q_i as an (invariant) input feature. The standard "
        "protocol uses |v| only (charges enter as q_i q_j on edges, which fixes them up to a global sign); "
        "an external field makes the sign matter.",
    )
    node_input: Literal["velocity", "atoms"] = Field(
        "velocity",
        description="`velocity`: |v_i| from `batch.vel` (dynamics); `atoms`: the one-hot atom types "
        "`batch.onehot` (molecules, e.g. QM9).",
    )
    atom_types: int = Field(5, ge=1, description="Width of `batch.onehot` when node_input is `atoms`.")
    output: Literal["position", "graph"] = Field(
        "position",
        description="`position`: the updated position of each node; `graph`: `out_channels` invariants per "
        "graph, graph_mlp(pool over nodes of node_mlp(h_i)) (e.g. a molecular property).",
    )
    out_channels: int = Field(1, ge=1, description="Invariants per graph of `output: graph`.")
    pool: Literal["sum", "mean"] = Field("sum", description="Pooling over the nodes of a graph for `output: graph`.")
    coord_updates: bool = Field(
        True, description="Update positions layer by layer (needed for `output: position`; the EGNN paper's "
        "QM9 model keeps them fixed)."
    )
    edge_gate: bool = Field(False, description="Scale each message by an inferred edge weight sigmoid(w . m_ij).")

    def io(self) -> ModelIO:
        """Batch fields by ``node_input`` / ``edge_input``; a position per node or invariants per graph."""
        if self.output == "graph":
            return point_cloud_io(self, (IOField("y", ("B", self.out_channels), "invariants per graph"),))
        return point_cloud_io(self, (positions_out(),))

    @model_validator(mode="after")
    def _check(self) -> "EGNNSpec":
        if self.output == "position" and not self.coord_updates:
            raise ValueError("output `position` needs coord_updates: true (the positions are the output)")
        if self.node_input == "atoms" and self.node_features:
            raise ValueError("node_features needs node_input `velocity` (molecules read their one-hot atoms only)")
        if self.node_input == "atoms" and (self.charge_feature or self.edge_input == "charge_product"):
            raise ValueError("node_input `atoms` has no charges: set edge_input to `none` or `edge_attr` and "
                             "charge_feature to false")
        return self


class EGNOSpec(ArchSpec):
    """EGNO: EGNN layers interleaved with temporal Fourier convolutions; K future frames in one pass."""

    arch: Literal["egno"] = "egno"
    hidden: int = Field(128, ge=1, description="Width of node features and messages (the EGNO MoCap setting: 128).")
    layers: int = Field(6, ge=1, description="Number of blocks, each a temporal Fourier convolution and an EGNN "
                        "layer (the EGNO MoCap setting: 6).")
    frames: int = Field(
        5, ge=1,
        description="K, the frames predicted in one pass: output (n, K, 3), or (n, 3) when K = 1. Must equal the "
        "data set's `frames` (mocap_run: the last K frames up to the horizon; the EGNO MoCap setting: 5).",
    )
    modes: int = Field(
        2, ge=1,
        description="Lowest temporal Fourier modes kept by each temporal convolution (the EGNO MoCap setting: 2); "
        "at most frames // 2 + 1, the modes that a real FFT of K frames has.",
    )
    time_embedding: int = Field(
        32, ge=0,
        description="Width of the sinusoidal embedding of the frame index k = 0..K-1 appended to every node's "
        "invariant inputs (0: none; the EGNO MoCap setting: 32).",
    )
    branch_hidden: int | None = Field(
        None, ge=1, description="Width of the symmetry-breaking branches (null: `hidden`, the ACE authors' setting)."
    )
    branch: EGNNBranchKind = Field(
        "stream",
        description=BRANCH_DESCRIPTION + " `stream` (the default): the ACE authors' EGNO branch form, a separate "
        "stream per layer that reads no equivariant feature: the feature branch is a batch norm and a spectrally "
        "normalised linear map of a linear map of the raw node inputs (with the frame's time embedding), input "
        "positions and velocities; the coordinate branch is batch norm, spectral-normalised linear, SiLU, batch "
        "norm, spectral-normalised linear of a linear map of the layer's current absolute positions.",
    )
    node_features: list[str] = node_features_field()
    coord_agg: str = Field("mean", pattern="^(mean|sum)$", description="Aggregation of coordinate messages: mean or sum.")
    edge_input: Literal["charge_product", "edge_attr", "none"] = Field(
        "charge_product",
        description="Edge input: `charge_product` (q_i q_j from `batch.charge`), `edge_attr` (the data set's "
        "invariant `batch.edge_attr`, e.g. bone (1) / two-hop (2) on mocap_run, the EGNO protocol) or `none`.",
    )
    edge_dim: int = Field(1, ge=1, description="Width of `batch.edge_attr` when edge_input is `edge_attr`.")
    initial_distance: bool = Field(
        True,
        description="Append |x_i - x_j|^2 of the *input* positions to every layer's edge input (invariant), as "
        "the EGNO authors do (`main_mocap_no.py`: edge input [hop type, |x_i^0 - x_j^0|^2]).",
    )
    coord_clamp: float | None = Field(
        None, gt=0,
        description="Cap the norm of each coordinate message d_ij phi_x(m_ij) at this value (null: no cap). The "
        "EGNO authors clamp each component of the aggregated update to +-100, which is not rotation-equivariant "
        "once it acts; a norm cap is.",
    )

    def io(self) -> ModelIO:
        """Point-cloud inputs; the positions of the next ``frames`` frames per node."""
        return point_cloud_io(self, (positions_out(self.frames),))

    @property
    def branch_width(self) -> int:
        """``branch_hidden``, or ``hidden`` when it is null."""
        return self.hidden if self.branch_hidden is None else self.branch_hidden

    @model_validator(mode="after")
    def _check(self) -> "EGNOSpec":
        available = self.frames // 2 + 1
        if self.modes > available:
            raise ValueError(f"modes ({self.modes}) exceeds the {available} temporal Fourier mode(s) of frames="
                             f"{self.frames} (a real FFT of K frames has K // 2 + 1); set modes <= {available}")
        return self


class GCNNSpec(ArchSpec):
    """Group CNN on p4 / p4m with an invariant classification or an equivariant dense head."""

    arch: Literal["gcnn"] = "gcnn"
    group: Literal["C4", "D4"] = Field("C4", description="C4 (p4: rotations by 90 degrees) or D4 (p4m: and mirrors).")
    in_channels: int = Field(1, ge=1, description="Input image channels.")
    channels: int = Field(8, ge=1, description="Channels per group element of the hidden feature maps.")
    layers: int = Field(3, ge=1, description="Conv layers, the lifting convolution included.")
    kernel_size: int = Field(3, ge=1, description="Odd filter size of every conv layer.")
    head: Literal["classify", "dense"] = Field(
        "classify", description="`classify`: invariant logits; `dense`: an equivariant image of `out_channels`."
    )
    num_classes: int = Field(10, ge=2, description="Classes of the `classify` head.")
    out_channels: int = Field(1, ge=1, description="Output channels of the `dense` head.")
    residual: bool = Field(True, description="`dense` head: add the input to the output (needs in == out channels).")
    pool: Literal["max", "mean"] = Field("max", description="Pooling over the group axis in the `classify` head.")
    branch: BranchKind = Field("plain", description=BRANCH_DESCRIPTION + " For the group CNN: `bounded` is a "
                               "spectrally normalised conv (`bounded_fixed`: without bias); the group batch norm "
                               "follows every layer.")

    def io(self) -> ModelIO:
        """An image tensor ``(B, in_channels, H, W)``; logits or an image."""
        return image_io(self)

    @model_validator(mode="after")
    def _check(self) -> "GCNNSpec":
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (exact rotations of the filters), got {self.kernel_size}")
        if self.head == "dense" and self.residual and self.in_channels != self.out_channels:
            raise ValueError("residual dense head needs in_channels == out_channels")
        return self


class SE3TransformerSpec(ArchSpec):
    """SE(3)-Transformer with multi-head invariant attention, built on e3nn."""

    arch: Literal["se3_transformer"] = "se3_transformer"
    layers: int = Field(3, ge=1, description="Number of attention layers.")
    channels: int | list[int] = Field(
        16,
        description="Channels per degree: one number for every degree, or a list [c_0, c_1, ..., c_L] "
        "(multiplicities of the irreps 0e, 1o, 2e, ...), each >= 1.",
    )
    max_degree: int = Field(1, ge=0, le=4, description="Largest degree l of the features and spherical harmonics.")
    heads: int = Field(4, ge=1, description="Attention heads; must divide the channels of every degree.")
    radial_basis: int = Field(12, ge=2, description="Gaussian basis functions of the edge length.")
    radial_hidden: int = Field(32, ge=1, description="Width of the radial MLP that gives the tensor-product weights.")
    max_radius: float = Field(5.0, gt=0, description="Range covered by the radial basis (lengths beyond it still count).")
    graph: Literal["data", "fully_connected", "radius", "knn"] = Field(
        "data",
        description="Edges: the data set's `edge_index`, all pairs, pairs within `radius`, or the `k` nearest "
        "(each inside its own graph; built in plain torch).",
    )
    radius: float = Field(2.0, gt=0, description="Cut-off distance of `graph: radius`.")
    k: int = Field(8, ge=1, description="Neighbours per node of `graph: knn`.")
    edge_input: Literal["charge_product", "edge_attr", "none"] = Field(
        "charge_product",
        description="Invariant edge input to the radial MLP: `charge_product` (q_i q_j), `edge_attr` (the data "
        "set's `batch.edge_attr`; needs `graph: data`) or `none`.",
    )
    edge_dim: int = Field(1, ge=1, description="Width of `batch.edge_attr` when edge_input is `edge_attr`.")
    charge_feature: bool = Field(False, description="Also feed each node's charge q_i as a 0e input feature.")
    node_input: Literal["velocity", "atoms"] = Field(
        "velocity",
        description="`velocity`: |v_i| (0e) and v_i (1o) from `batch.vel` (dynamics); `atoms`: the one-hot atom "
        "types `batch.onehot` (0e) only (molecules, e.g. QM9).",
    )
    atom_types: int = Field(5, ge=1, description="Width of `batch.onehot` when node_input is `atoms`.")
    branch_hidden: int = Field(64, ge=1, description="Width of the symmetry-breaking branch MLPs.")
    branch: BranchKind = Field("plain", description=BRANCH_DESCRIPTION)
    node_features: list[str] = node_features_field()
    output: Literal["position", "vector", "invariant", "graph", "tensor"] = Field(
        "position",
        description="`position`: x_i + (1o head), a point per node; `vector`: a 1o vector per node; "
        "`invariant`: `out_channels` scalars (0e) per node; `graph`: those scalars pooled over each graph "
        "(`pool`), an invariant per graph (e.g. a molecular property); `tensor`: a symmetric 3x3 tensor per "
        "graph from a pooled 0e + 2e head, rotating as R A R^T (e.g. polarizability; needs max_degree >= 2).",
    )
    pool: Literal["sum", "mean"] = Field(
        "sum", description="Pooling over the nodes of a graph for `output: graph` and `output: tensor`."
    )
    out_channels: int = Field(1, ge=1, description="Scalars per node of `output: invariant`.")

    def io(self) -> ModelIO:
        """Point-cloud inputs (``edge_index`` only with ``graph: data``); the output by ``output``."""
        outputs = {
            "position": positions_out(),
            "vector": IOField("y", ("n", 3), "a vector per node (rotates, does not translate)"),
            "invariant": IOField("y", ("n", self.out_channels), "invariants per node"),
            "graph": IOField("y", ("B", self.out_channels), "invariants per graph"),
            "tensor": IOField("y", ("B", 3, 3), "a symmetric 3x3 tensor per graph (rotates as R A R^T)"),
        }
        return point_cloud_io(self, (outputs[self.output],))

    @property
    def channels_per_degree(self) -> list[int]:
        """``[c_0, ..., c_L]``."""
        if isinstance(self.channels, int):
            return [self.channels] * (self.max_degree + 1)
        return list(self.channels)

    @model_validator(mode="after")
    def _check(self) -> "SE3TransformerSpec":
        if isinstance(self.channels, list) and len(self.channels) != self.max_degree + 1:
            raise ValueError(f"channels lists one number per degree 0..max_degree: expected {self.max_degree + 1} "
                             f"numbers, got {len(self.channels)}")
        for c in self.channels_per_degree:
            if c < 1 or c % self.heads:
                raise ValueError(f"channels ({c}) must be a positive multiple of heads ({self.heads})")
        if self.node_input == "atoms" and self.node_features:
            raise ValueError("node_features needs node_input `velocity` (molecules read their one-hot atoms only)")
        if self.node_input == "atoms" and (self.charge_feature or self.edge_input == "charge_product"):
            raise ValueError("node_input `atoms` has no charges: set edge_input to `none` or `edge_attr` and "
                             "charge_feature to false")
        if self.output == "tensor" and self.max_degree < 2:
            raise ValueError(f"output `tensor` needs 2e features: max_degree must be >= 2, got {self.max_degree}")
        if self.edge_input == "edge_attr" and self.graph != "data":
            raise ValueError("edge_input `edge_attr` needs graph `data` (the data set's edges carry the attributes)")
        return self


SEGNNBranchKind = Literal["authors", "plain", "bounded", "bounded_fixed"]


class SEGNNSpec(ArchSpec):
    """SEGNN: steerable E(3)-equivariant message passing on degree <= 1 features."""

    arch: Literal["segnn"] = "segnn"
    hidden: int = Field(
        64, ge=2,
        description="Width that the hidden irreps are weight-balanced against: n x 0e + n x 1o with n = "
        "ceil(hidden / 2), whose tensor product with the attributes 0e + 1o has the hidden^2 weights of a "
        "linear layer on `hidden` scalars (the SEGNN authors' `weightbalanced` irreps; 64 -> 32x0e + 32x1o).",
    )
    layers: int = Field(4, ge=1, description="Number of message-passing layers.")
    lmax: Literal[1] = Field(
        1, description="Largest degree of the hidden features and of the spherical-harmonic attributes (1: "
        "scalars and vectors, the published N-body setting).",
    )
    edge_input: Literal["charge_product", "edge_attr", "none"] = Field(
        "charge_product",
        description="Invariant message input beside the edge length |x_i - x_j|: `charge_product` (q_i q_j "
        "from `batch.charge`, the N-body protocol), `edge_attr` (the data set's `batch.edge_attr`) or `none`.",
    )
    edge_dim: int = Field(1, ge=1, description="Width of `batch.edge_attr` when edge_input is `edge_attr`.")
    node_features: list[str] = node_features_field()
    branch: SEGNNBranchKind = Field(
        "authors",
        description="Symmetry-breaking branch of each relaxed node-update sub-block, reading the flattened "
        "irreps and the raw absolute position of the node: `authors` (the ACE authors' SEGNN form: "
        "Linear-GELU-Linear-GELU-Linear, widths 2d-2d-d-d for the first sub-block and d-2d-d-d for the second, d "
        "the width of the flattened features), or our `plain` / `bounded` / `bounded_fixed` MLPs of width "
        "`branch_hidden`. " + BRANCH_DESCRIPTION.split(": ", 1)[1],
    )
    branch_hidden: int = Field(64, ge=1, description="Width of the `plain` / `bounded` branch MLPs.")
    kernel: Literal["fused", "e3nn"] = Field(
        "fused",
        description="Tensor-product kernel: `fused` (our matrix-product kernels for degrees <= 1) or `e3nn` "
        "(e3nn's FullyConnectedTensorProduct on the same parameters; the same numbers to float round-off, slower).",
    )

    def io(self) -> ModelIO:
        """Point-cloud inputs; a position per node."""
        return point_cloud_io(self, (positions_out(),))

    @property
    def multiplicity(self) -> int:
        """``n`` of the hidden irreps ``n x 0e + n x 1o``."""
        return max(1, math.ceil(self.hidden / 2))
