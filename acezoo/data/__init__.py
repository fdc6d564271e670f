"""Built-in data sets (importing this module registers them)."""
from acezoo.data.bundle import DataBundle, RegressionTask
from acezoo.data.nbody import NBodySpec
from acezoo.data.mocap import MocapSpec
from acezoo.data.digits import DigitsSpec, UprightDigitsSpec
from acezoo.data.advection import AdvectionSpec

__all__ = [
    "DataBundle", "RegressionTask", "NBodySpec", "MocapSpec", "DigitsSpec", "UprightDigitsSpec", "AdvectionSpec",
]
