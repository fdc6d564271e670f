"""Built-in architectures (importing this module registers them)."""
from acezoo.archs.egnn import EGNN, EGNNSpec
from acezoo.archs.se3_transformer import SE3Transformer, SE3TransformerSpec

__all__ = ["EGNN", "EGNNSpec", "SE3Transformer", "SE3TransformerSpec"]
