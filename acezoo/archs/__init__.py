"""Built-in architectures (importing this module registers them)."""
from acezoo.archs.egnn import EGNN, EGNNSpec

__all__ = ["EGNN", "EGNNSpec"]
