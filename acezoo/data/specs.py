"""The specs (pydantic schemas) of the built-in data sets.

Kept apart from the builders so that validating a config or listing the zoo needs pydantic
(and numpy) only; the builders, with torch and torch_geometric, are imported when data is built.
"""
from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from acezoo.config.base import DatasetSpec
from acezoo.config.io_fields import ModelIO
from acezoo.data.nbody_egnn_draw import EGNN_SMALL_SIZES
from acezoo.data.nbody_sim import NBodyParams

__all__ = ["NBodySpec", "MocapSpec", "DigitsSpec", "UprightDigitsSpec", "AdvectionSpec", "QM9Spec",
           "MOCAP_ENV_VAR", "QM9Target", "QM9_BLOCKS", "QM9_SMALL", "QM9_ATOMREF", "QM9_ELEMENTS"]

MOCAP_ENV_VAR = "ACEZOO_MOCAP"
DIGIT_IMAGES = 1797  # scikit-learn's handwritten digits

QM9Target = Literal["mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv", "alpha_tensor"]
QM9_BLOCKS = {"train": 100_000, "val": 17_748, "test": 13_083}
QM9_SMALL = {"train": 2_000, "val": 500, "test": 500}

QM9_ELEMENTS: dict[str, int] = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
"""The elements of QM9 and their atomic numbers; the models' ``onehot`` follows this order."""

QM9_ATOMREF: dict[str, dict[str, float]] = {
    # QM9 atomref table (figshare 1057643), hartree, B3LYP/6-31G(2df,p), free atoms
    "U0": {"H": -0.500273, "C": -37.846772, "N": -54.583861, "O": -75.064579, "F": -99.718730},
    "U": {"H": -0.498857, "C": -37.845355, "N": -54.582445, "O": -75.063163, "F": -99.717314},
    "H": {"H": -0.497912, "C": -37.844411, "N": -54.581501, "O": -75.062219, "F": -99.716370},
    "G": {"H": -0.510927, "C": -37.861317, "N": -54.598897, "O": -75.079532, "F": -99.733544},
}
"""Free-atom energies (hartree) subtracted from U0, U, H, G for atomization energies."""


class NBodySpec(DatasetSpec):
    """Charged 5-particle system; predict positions 10 frames (1000 steps) ahead."""

    dataset: Literal["nbody_charged"] = "nbody_charged"
    n_train: int = Field(3000, ge=1, description="Training trajectories.")
    n_val: int = Field(2000, ge=1, description="Validation trajectories.")
    n_test: int = Field(2000, ge=1, description="Test trajectories.")
    frame_in: int = Field(30, ge=0, le=48, description="Input frame (a frame every 100 steps).")
    frame_out: int = Field(40, ge=1, le=49, description="Target frame.")
    seed: int = Field(0, ge=0, description="Data seed (each split derives its own from it).")
    field_strength: float = Field(0.0, ge=0, description="Strength of a constant external field on the charges (0: none).")
    field_direction: tuple[float, float, float] = Field(
        (0.0, 0.0, 1.0), description="Direction of the external field (normalised)."
    )
    draw: Literal["acezoo", "egnn_small"] = Field(
        "acezoo",
        description="Initial conditions: `acezoo` (drawn from `seed`) or `egnn_small` (the EGNN authors' "
        "nbody_small set replayed: NumPy RandomState(43), the first n_train of its 10000 training, n_val of its "
        "2000 validation and n_test of its 2000 test simulations; `seed` must stay 0; their frames 30 -> 40 are "
        "frame_in 31, frame_out 41 here).",
    )

    @model_validator(mode="after")
    def _check(self) -> "NBodySpec":
        if self.frame_out <= self.frame_in:
            raise ValueError(f"frame_out ({self.frame_out}) must be after frame_in ({self.frame_in})")
        if self.draw == "egnn_small":
            for split, size in EGNN_SMALL_SIZES.items():
                if getattr(self, f"n_{split}") > size:
                    raise ValueError(f"n_{split} ({getattr(self, f'n_{split}')}) exceeds the {size} {split} "
                                     "simulations of draw egnn_small")
            if self.seed != 0:
                raise ValueError("seed: draw egnn_small is the authors' fixed draw (RandomState(43)); leave seed at 0")
        if math.hypot(*self.field_direction) == 0:
            raise ValueError("field_direction must be a non-zero vector")
        return self

    def field_notes(self) -> dict[str, str]:
        """Simulation units: unit masses and charges, time unit = 1000 steps of dt 0.001."""
        steps = (self.frame_out - self.frame_in) * 100
        field = (f"; a constant external field of strength {self.field_strength:g} along "
                 f"{tuple(self.field_direction)} acts on the charges") if self.field_strength else ""
        return {
            "pos": f"positions of the 5 particles at frame {self.frame_in} (simulation length units)",
            "vel": f"velocities at frame {self.frame_in} (length units per time unit; 1 time unit = 1000 steps)",
            "charge": "charges, +1 or -1",
            "edge_index": "every ordered pair i != j of a system's particles (acezoo.point_cloud's default)",
            "y": f"positions at frame {self.frame_out}, {steps} integration steps of dt 0.001 later{field}",
        }

    def params(self) -> NBodyParams:
        """Simulator parameters (the field vector is strength * unit direction)."""
        d = np.asarray(self.field_direction, dtype=float)
        field = tuple(float(c) for c in self.field_strength * d / np.linalg.norm(d))
        return NBodyParams(field=field)  # type: ignore[arg-type]


class MocapSpec(DatasetSpec):
    """CMU motion capture (subject 9, run); predict joint positions ``horizon`` frames ahead."""

    dataset: Literal["mocap_run"] = Field("mocap_run", description="Data set name.")
    path: str | None = Field(
        None, description=f"The cmu_mocap_run.npz file (default: ${MOCAP_ENV_VAR}, else the copy shipped with acezoo)."
    )
    horizon: int = Field(30, ge=1, description="Frames ahead to predict (the protocol: 30).")
    frames: int = Field(
        1, ge=1,
        description="K, target frames per sample. 1: the frame `horizon` ahead, `y` (31, 3) (the EGNN protocol). "
        "K > 1 (the EGNO protocol: 5): the last K frames up to the horizon, s + horizon - K + 1 .. s + horizon, as "
        "`y` (31, K, 3); the training loss is the MSE over all K frames and the reported `mse` that of the last "
        "frame (`mse_all_frames`: over all K). Must be at most `horizon`.",
    )
    n_train: int = Field(
        200,
        ge=1,
        le=200,
        description="Training samples, at most 200 (the protocol: the first 40 listed start frames of each "
        "of the 5 train trials); fewer take the first n_train // 5 of each trial (one more for the first "
        "n_train % 5 trials).",
    )

    def field_notes(self) -> dict[str, str]:
        """The EGNO preprocessing of CMU subject 9 "run" (31 joints); lengths in its units."""
        target = (f"joint positions {self.horizon} frames after the input frame" if self.frames == 1 else
                  f"joint positions of the last {self.frames} frames up to {self.horizon} frames ahead")
        return {
            "pos": "positions of the 31 joints at the input frame (the data file's length units)",
            "vel": "per-frame displacement of each joint, X[t+1] - X[t]",
            "height": "each joint's vertical (y) coordinate / 10 (acezoo.mocap_input computes it from pos)",
            "edge_index": "the skeleton: 30 bones and the two-hop neighbours, both directions, 130 edges per "
                          "pose (acezoo.mocap_skeleton())",
            "edge_attr": "1 for a bone, 2 for a two-hop pair (acezoo.mocap_skeleton())",
            "y": target,
        }

    def input_helper(self, io: ModelIO) -> str | None:
        return "acezoo.mocap_input(pos, vel)"

    @model_validator(mode="after")
    def _check(self) -> "MocapSpec":
        if self.frames > self.horizon:
            raise ValueError(f"frames ({self.frames}) must be at most horizon ({self.horizon}): the targets are the "
                             "last `frames` frames up to the horizon, after the input frame")
        return self


class _DigitsBase(DatasetSpec):
    n_train: int = Field(1000, ge=1, description="Training images.")
    n_val: int = Field(297, ge=1, description="Validation images.")
    n_test: int = Field(500, ge=1, description="Test images (n_train + n_val + n_test <= 1797).")
    upsample: int = Field(1, ge=1, le=8, description="Nearest-neighbour upsampling factor (8x8 -> 8k x 8k).")
    seed: int = Field(0, ge=0, description="Seed of the split and of the random transformations.")

    def field_notes(self) -> dict[str, str]:
        """scikit-learn's 8x8 digits, grey levels scaled to [0, 1]."""
        side = 8 * self.upsample
        return {
            "x": f"grey-level digit images in [0, 1], one channel, {side}x{side} pixels, as a plain tensor",
            "y": "logits of the digits 0-9 (argmax: the predicted digit)",
        }

    @model_validator(mode="after")
    def _check(self) -> "_DigitsBase":
        total = self.n_train + self.n_val + self.n_test
        if total > DIGIT_IMAGES:
            raise ValueError(f"n_train + n_val + n_test = {self.n_train} + {self.n_val} + {self.n_test} = {total}; "
                             f"allowed: at most the {DIGIT_IMAGES} images of the data set")
        return self


class DigitsSpec(_DigitsBase):
    """Digits, each rotated by a random multiple of 90 degrees (and mirrored): exactly symmetric."""

    dataset: Literal["digits_rot"] = "digits_rot"
    transform: Literal["rot90", "rot90_flip"] = Field(
        "rot90", description="Random transformation of every image: `rot90` (C4) or `rot90_flip` (D4)."
    )


class UprightDigitsSpec(_DigitsBase):
    """Digits as written (no rotation): the orientation carries information (6 vs 9)."""

    dataset: Literal["digits_upright"] = "digits_upright"


class AdvectionSpec(DatasetSpec):
    """Diffusion (+ constant wind) of a random smooth periodic field; predict k steps ahead."""

    dataset: Literal["advection_2d"] = "advection_2d"
    size: int = Field(17, ge=5, le=129, description="Grid points per side (odd sizes keep wind-free rot90 exact).")
    n_train: int = Field(800, ge=1, description="Training fields.")
    n_val: int = Field(200, ge=1, description="Validation fields.")
    n_test: int = Field(200, ge=1, description="Test fields.")
    steps: int = Field(10, ge=1, description="Steps ahead k: the target is u(k dt).")
    dt: float = Field(0.01, gt=0, description="Time step (the unit square is the domain).")
    diffusivity: float = Field(0.01, ge=0, description="Diffusion coefficient D.")
    wind: tuple[float, float] = Field(
        (0.0, 0.0),
        description="Constant wind (w_rows, w_cols) in domain lengths per unit time; (0, 0) is the C4/D4 symmetric task.",
    )
    smoothness: float = Field(1.5, gt=0, description="Width (grid cells) of the Gaussian filter of the initial fields.")
    seed: int = Field(0, ge=0, description="Data seed (each split derives its own from it).")

    def field_notes(self) -> dict[str, str]:
        """A field on the periodic unit square, sampled on a ``size x size`` grid."""
        wind = f", wind {tuple(self.wind)}" if self.wind != (0.0, 0.0) else ""
        return {
            "x": f"the field u(0) on the periodic unit square, {self.size}x{self.size} grid points, one channel, "
                 "as a plain tensor",
            "y": f"the field u(t) at t = {self.steps} x {self.dt:g} = {self.steps * self.dt:g} (diffusivity "
                 f"{self.diffusivity:g}{wind})",
        }


class QM9Spec(DatasetSpec):
    """QM9: predict one molecular property from the atoms' elements and positions."""

    standardised_target: ClassVar[bool] = True  # the model predicts (y - mean) / std

    dataset: Literal["qm9"] = "qm9"
    target: QM9Target = Field(
        "homo",
        description="Property to predict; energies in meV (see acezoo.data.qm9.TARGETS). `alpha_tensor`: the 3x3 "
        "polarizability tensor [bohr^3] in the frame of the positions (reconstructed; an equivariant target).",
    )
    subset: Literal["full", "qm9_small"] = Field(
        "full", description="'qm9_small': default sizes 2000/500/500 (a fixed random subset for CPU runs)."
    )
    n_train: int | None = Field(
        None, ge=1, le=QM9_BLOCKS["train"], description="Training molecules (None: 100000, or 2000 for qm9_small)."
    )
    n_val: int | None = Field(
        None, ge=1, le=QM9_BLOCKS["val"], description="Validation molecules (None: 17748, or 500 for qm9_small)."
    )
    n_test: int | None = Field(
        None, ge=1, le=QM9_BLOCKS["test"], description="Test molecules (None: 13083, or 500 for qm9_small)."
    )
    split_seed: int = Field(0, ge=0, description="Seed of the permutation that assigns molecules to splits.")
    graph: Literal["fully_connected", "radius"] = Field(
        "fully_connected", description="Edges of each molecule: all atom pairs, or pairs within `radius`."
    )
    radius: float = Field(5.0, gt=0, description="Edge cutoff in Angstrom (graph='radius').")
    polarizability: bool = Field(
        False, description="Also attach the 3x3 polarizability tensor alpha_tensor [bohr^3] (its own frame, not pos's)."
    )
    atomization: bool = Field(
        False, description="U0/U/H/G as atomization energies (free-atom energies subtracted) instead of totals."
    )
    loss: Literal["l1", "mse"] = Field(
        "l1", description="Training loss on the standardised targets: `l1` (absolute error; for `alpha_tensor` the "
        "Frobenius norm of the error) or `mse` (squared error of each entry).",
    )
    min_gap: float = Field(
        1e-2, ge=0, lt=1, description="`alpha_tensor`: leave out molecules whose reconstructed axes are ill-defined "
        "(relative gap between the eigenvalues of the charge-weighted second moment below this).",
    )

    @model_validator(mode="after")
    def _check(self) -> "QM9Spec":
        if self.atomization and self.target not in QM9_ATOMREF:
            raise ValueError(f"atomization applies to targets {', '.join(QM9_ATOMREF)}, not {self.target!r}")
        return self

    def field_notes(self) -> dict[str, str]:
        """Atoms in Angstrom; the model predicts the standardised target."""
        edges = (f"the atom pairs within {self.radius:g} Angstrom of each other, inside each molecule"
                 if self.graph == "radius" else "every ordered atom pair i != j of each molecule")
        target = ("the polarizability tensor in the frame of pos, standardised: A = output * std + mean * I"
                  if self.target == "alpha_tensor" else f"{self.target}, standardised: value = output * std + mean")
        return {
            "pos": "atom positions in Angstrom",
            "onehot": "one-hot element of each atom over (H, C, N, O, F) (acezoo.molecules computes it)",
            "edge_index": edges + " (acezoo.molecules builds them)",
            "y": target + " (model.acezoo_inputs.to_units(output) does it)",
        }

    def input_helper(self, io: ModelIO) -> str | None:
        radius = f", radius={self.radius:g}" if self.graph == "radius" else ""
        return f"acezoo.molecules(atoms, pos{radius})"

    def sizes(self) -> dict[str, int]:
        """The number of molecules in each split."""
        default = QM9_SMALL if self.subset == "qm9_small" else QM9_BLOCKS
        given = {"train": self.n_train, "val": self.n_val, "test": self.n_test}
        return {s: default[s] if n is None else n for s, n in given.items()}
