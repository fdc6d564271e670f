"""Built-in data sets (importing this module registers them)."""
from acezoo.data.bundle import DataBundle, RegressionTask
from acezoo.data.nbody import NBodySpec
from acezoo.data.mocap import MocapSpec

__all__ = ["DataBundle", "RegressionTask", "NBodySpec", "MocapSpec"]
