"""The inputs and outputs of the built-in architectures, derived from their specs (no torch).

Point-cloud networks (EGNN, EGNO, SEGNN, SE(3)-Transformer) read a batch of graphs by
attribute, the layout of a ``torch_geometric`` batch: node fields ``(n, ...)`` of every graph
stacked, ``edge_index`` ``(2, E)`` with row 0 the receiver ``i`` and row 1 the sender ``j`` of
each edge ``j -> i`` (edges stay inside a graph), and ``batch`` ``(n,)`` the graph of each node.
Which fields a spec reads follows from its options: ``node_input`` (velocities or one-hot
atoms), ``edge_input`` (charges ``q_i q_j`` or ``edge_attr``), ``charge_feature``,
``node_features`` and, for the SE(3)-Transformer, ``graph`` (edges from the data or built from
the positions). The group CNN reads an image tensor ``(B, C, H, W)``.
"""
from __future__ import annotations

from typing import Any

from acezoo.config.io_fields import IOField, ModelIO

__all__ = ["point_cloud_inputs", "point_cloud_io", "positions_out", "image_io"]

_GRAPH_OF_NODE = IOField("batch", ("n",), "the graph of each node, 0 .. B-1, each graph's nodes contiguous "
                         "(default: all nodes form one graph)", dtype="int", required=False)


def point_cloud_inputs(spec: Any) -> tuple[IOField, ...]:
    """The batch fields a point-cloud spec reads (``spec``: any spec with the usual options)."""
    atoms = getattr(spec, "node_input", "velocity") == "atoms"
    edge_input = getattr(spec, "edge_input", "none")
    fields = [IOField("pos", ("n", 3), "node positions")]
    if atoms:
        fields.append(IOField("onehot", ("n", getattr(spec, "atom_types", 5)), "one-hot atom types"))
    else:
        fields.append(IOField("vel", ("n", 3), "node velocities"))
    if edge_input == "charge_product" or getattr(spec, "charge_feature", False):
        fields.append(IOField("charge", ("n", 1), "node charges" + (" (edge input q_i q_j)"
                                                                    if edge_input == "charge_product" else "")))
    for name in getattr(spec, "node_features", []):
        fields.append(IOField(name, ("n", 1), f"extra invariant node input `{name}` (model.node_features)"))
    if getattr(spec, "graph", "data") == "data":
        fields.append(IOField("edge_index", (2, "E"), "edges j -> i (row 0 the receiver i, row 1 the sender j), "
                              "inside each graph", dtype="int"))
    if edge_input == "edge_attr":
        fields.append(IOField("edge_attr", ("E", getattr(spec, "edge_dim", 1)), "invariant edge attributes, one row "
                              "per edge of edge_index"))
    fields.append(_GRAPH_OF_NODE)
    return tuple(fields)


def point_cloud_io(spec: Any, outputs: tuple[IOField, ...]) -> ModelIO:
    """A point-cloud spec's :class:`ModelIO`: its inputs and the given ``outputs``."""
    notes = ()
    if getattr(spec, "graph", "data") != "data":
        notes = (f"edges are built from the positions (model.graph `{spec.graph}`), each inside its own graph",)
    return ModelIO(point_cloud_inputs(spec), outputs, notes=notes)


def positions_out(frames: int = 1) -> IOField:
    """A point per node (``frames > 1``: one per predicted frame)."""
    if frames > 1:
        return IOField("y", ("n", frames, 3), f"predicted positions of each node, {frames} frames")
    return IOField("y", ("n", 3), "predicted position of each node")


def image_io(spec: Any) -> ModelIO:
    """The group CNN's :class:`ModelIO`: an image tensor in, logits or an image out."""
    inputs = (IOField("x", ("B", spec.in_channels, "H", "W"), "images (a plain tensor, or a batch with `x`)"),)
    if spec.head == "classify":
        out = IOField("y", ("B", spec.num_classes), "class logits (invariant under the group)")
    else:
        out = IOField("y", ("B", spec.out_channels, "H", "W"), "an image per input (equivariant)")
    return ModelIO(inputs, (out,), tensor_input="x")
