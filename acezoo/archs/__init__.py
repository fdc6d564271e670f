"""Built-in architectures (importing this module registers them)."""
from acezoo.archs.egnn import EGNN, EGNNSpec
from acezoo.archs.gcnn import GCNN, GCNNSpec
from acezoo.archs.se3_transformer import SE3Transformer, SE3TransformerSpec

__all__ = ["EGNN", "EGNNSpec", "GCNN", "GCNNSpec", "SE3Transformer", "SE3TransformerSpec"]
