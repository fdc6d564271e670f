"""Neural-network building blocks shared by the architectures."""
from acezoo.nn.mlp import MLP
from acezoo.nn.relaxed import Relaxed

__all__ = ["MLP", "Relaxed"]
