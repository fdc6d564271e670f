"""Built-in data sets (importing this module registers them)."""
from acezoo.data.bundle import DataBundle, RegressionTask
from acezoo.data.nbody import NBodySpec
from acezoo.data.mocap import MocapSpec
from acezoo.data.digits import DigitsSpec, UprightDigitsSpec
from acezoo.data.advection import AdvectionSpec
from acezoo.data.qm9 import QM9Spec

__all__ = [
    "DataBundle", "RegressionTask", "NBodySpec", "MocapSpec", "DigitsSpec", "UprightDigitsSpec", "AdvectionSpec", "QM9Spec",
]
