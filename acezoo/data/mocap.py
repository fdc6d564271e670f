"""CMU motion capture, subject 9 "run" (the EGNO protocol) as an acezoo data set.

Predict the 31 joint positions ``horizon`` frames ahead (default 30) from the positions and
velocities at a start frame. The data file ``cmu_mocap_run.npz`` ships with acezoo (1.1 MB,
``acezoo/data/files/``, where its README credits the CMU database and the EGNO preprocessing);
it is read with ``np.load(path, allow_pickle=False)`` from ``data.path``, else from
``$ACEZOO_MOCAP``, else from the shipped copy.

Protocol (EGNO, Xu et al. 2024):

- velocity at frame ``t`` is ``X[t+1] - X[t]`` (a per-frame displacement); the last frame of
  each trial, which has no velocity, is dropped;
- a sample is ``(X[s], V[s]) -> X[s + horizon]`` for a listed start frame ``s``; with ``frames: K > 1``
  (EGNO's multi-frame protocol, ``K = 5`` in the EGNO and ACE papers) the targets are the last ``K``
  frames up to the horizon, ``X[s + horizon - K + 1] .. X[s + horizon]`` (the ``last`` choice of the
  EGNO code's ``MotionDynamicsDataset``), ``y`` of shape (31, K, 3), scored by a
  :class:`~acezoo.data.bundle.TrajectoryTask`: trained on the MSE over all K frames, reported as the
  MSE of the last one (``mse``, the number the papers report) and of all (``mse_all_frames``);
- train: the first 40 listed start frames of each of the train trials 1, 2, 5, 6, 10 (200);
  val: all 80 listed start frames of trials 0, 4, 9 (240); test: those of trials 3, 7, 8 (240).

A listed start frame whose target ``s + horizon`` falls outside the frames that have a velocity
(``s + horizon > T - 2`` for a trial of ``T`` frames) is dropped, before the train cap of 40 per
trial is applied. With the shipped file this never happens for ``horizon <= 35`` (trial 5 has 126
frames and lists start frame 89), so the default protocol keeps all 200 / 240 / 240 samples;
``bundle.info["dropped"]`` counts the dropped listed start frames per split (before the train cap).

Items are ``Data`` with ``pos``, ``vel``, ``y`` (31, 3) (``(31, K, 3)`` with ``frames: K > 1``) and
``height`` (31, 1) float32, the fixed ``edge_index`` and ``edge_attr`` (E, 1). ``height`` is EGNO's
node feature, the joint's y coordinate / 10: it is invariant only to rotations about the vertical (y)
axis and to horizontal translations, not to general rotations. Edges: the 30 bones in both directions
(``edge_attr`` 1) and the two-hop neighbours in both directions (``edge_attr`` 2); 60 + 70 = 130
directed edges for the CMU skeleton, ordered by (source, target).
"""
from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from acezoo.data.bundle import DataBundle, RegressionTask, TrajectoryTask
from acezoo.data.specs import MOCAP_ENV_VAR as ENV_VAR
from acezoo.data.specs import MocapSpec
from acezoo.data.tensor_graphs import GraphTensorDataset
from acezoo.errors import ConfigError

__all__ = ["MocapSpec", "SkeletonDataset", "build_mocap", "height_feature", "load_mocap", "resolve_mocap_path", "skeleton_edges",
           "ENV_VAR"]

SPLIT_TRIALS: dict[str, tuple[int, ...]] = {"train": (1, 2, 5, 6, 10), "val": (0, 4, 9), "test": (3, 7, 8)}
TRAIN_PER_TRIAL = 40
N_TRIALS = 11
N_JOINTS = 31
_EXPECTED = (
    "expected arrays edges (E, 2) int, trial_00..trial_10 (T, 31, 3) float, "
    "split_{train,val,test}_trial_KK (n,) int; see acezoo/data/files/README.md"
)


# --------------------------------------------------------------------------- the edges


def skeleton_edges(bones: np.ndarray, n_joints: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``edge_index`` (2, E) long and ``edge_attr`` (E, 1) float32 of the skeleton graph.

    Bones in both directions get attribute 1, two-hop neighbours (joints sharing a neighbour,
    excluding self pairs and bones) in both directions attribute 2; ordered by (source, target).
    """
    adj = np.zeros((n_joints, n_joints), dtype=bool)
    adj[bones[:, 0], bones[:, 1]] = True
    adj[bones[:, 1], bones[:, 0]] = True
    np.fill_diagonal(adj, False)
    two_hop = (adj.astype(np.int64) @ adj.astype(np.int64)) > 0
    two_hop &= ~adj
    np.fill_diagonal(two_hop, False)
    attr = np.where(adj, 1.0, np.where(two_hop, 2.0, 0.0))
    src, dst = np.nonzero(attr)  # row-major: sorted by (source, target)
    edge_index = torch.from_numpy(np.stack([src, dst])).long()
    edge_attr = torch.from_numpy(attr[src, dst]).float().unsqueeze(1)
    return edge_index, edge_attr


def height_feature(pos: torch.Tensor) -> torch.Tensor:
    """EGNO's node feature: each joint's vertical (y) coordinate / 10, shape ``(..., 1)``."""
    return pos[..., 1:2] / 10.0


class SkeletonDataset(GraphTensorDataset):
    """A :class:`GraphTensorDataset` whose graphs also share a fixed ``edge_attr`` (E, d)."""

    def __init__(self, node_fields: dict[str, torch.Tensor], edge_index: torch.Tensor, edge_attr: torch.Tensor) -> None:
        super().__init__(node_fields, edge_index)
        if edge_attr.shape[0] != edge_index.shape[1]:
            raise ValueError(f"edge_attr has {edge_attr.shape[0]} rows for {edge_index.shape[1]} edges")
        self.edge_attr = edge_attr

    def __getitem__(self, i: int) -> Data:
        item = super().__getitem__(i)
        item.edge_attr = self.edge_attr.clone()
        return item

    def collate(self, indices: Sequence[int] | torch.Tensor) -> Batch:
        """The ``Batch`` of the given graphs (same layout as ``Batch.from_data_list``)."""
        batch = super().collate(indices)
        batch.edge_attr = self.edge_attr.repeat(batch.num_graphs, *([1] * (self.edge_attr.dim() - 1)))
        return batch

    def to_dtype(self, dtype: torch.dtype) -> "SkeletonDataset":
        """A copy whose floating-point fields (and ``edge_attr``) have ``dtype``."""
        fields = {k: t.to(dtype) if t.is_floating_point() else t for k, t in self.fields.items()}
        return SkeletonDataset(fields, self.edge_index, self.edge_attr.to(dtype))


# --------------------------------------------------------------------------- loading


def bundled_mocap_path() -> Path:
    """The ``cmu_mocap_run.npz`` shipped inside the package (CMU mocap, EGNO preprocessing; see
    ``acezoo/data/files/README.md`` for the credits)."""
    return Path(__file__).resolve().parent / "files" / "cmu_mocap_run.npz"


def resolve_mocap_path(spec: MocapSpec) -> Path:
    """``data.path``, else ``$ACEZOO_MOCAP``, else the file shipped with acezoo."""
    raw = spec.path if spec.path is not None else os.environ.get(ENV_VAR)
    if not raw:
        path = bundled_mocap_path()
        if not path.is_file():
            raise ConfigError([("data.path", f"no mocap data file: the package's {path.name} is missing; set "
                                f"data.path or ${ENV_VAR} to cmu_mocap_run.npz")])
        return path
    path = Path(raw).expanduser()
    if not path.is_file():
        how = "data.path" if spec.path is not None else f"${ENV_VAR}"
        raise ConfigError([("data.path", f"mocap data file not found (from {how}); {_EXPECTED}")], source=str(path))
    return path


def load_mocap(path: str | Path) -> dict[str, np.ndarray]:
    """The validated arrays of ``cmu_mocap_run.npz`` (``edges``, ``trial_KK``, ``split_*``).

    Raises:
        ConfigError: the file is missing, is not an ``.npz`` archive, or lacks / has malformed arrays.
    """
    src = str(path)

    def bad(msg: str) -> ConfigError:
        return ConfigError([("data.path", f"{msg}; {_EXPECTED}")], source=src)

    if not Path(path).is_file():
        raise bad("mocap data file not found")
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise bad(f"not a valid .npz archive ({type(e).__name__}: {e})") from e
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise bad("not an .npz archive (a single .npy array)")
    wanted = ["edges"] + [f"trial_{k:02d}" for k in range(N_TRIALS)]
    wanted += [f"split_{s}_trial_{k:02d}" for s, ks in SPLIT_TRIALS.items() for k in ks]
    with f:
        missing = [k for k in wanted if k not in f.files]
        if missing:
            raise bad(f"missing arrays {', '.join(missing)}")
        try:
            arrays = {k: f[k] for k in wanted}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise bad(f"unreadable array ({type(e).__name__}: {e})") from e

    edges = arrays["edges"]
    if edges.ndim != 2 or edges.shape[1] != 2 or edges.shape[0] == 0 or edges.dtype.kind not in "iu":
        raise bad(f"array edges: expected a non-empty (E, 2) integer array, got {edges.shape} {edges.dtype}")
    if edges.min() < 0 or edges.max() >= N_JOINTS:
        raise bad(f"array edges: joint indices must lie in [0, {N_JOINTS}), got [{edges.min()}, {edges.max()}]")
    for k in range(N_TRIALS):
        name = f"trial_{k:02d}"
        x = arrays[name]
        if x.ndim != 3 or x.shape[1:] != (N_JOINTS, 3) or x.shape[0] < 2 or x.dtype.kind != "f":
            raise bad(f"array {name}: expected a (T, {N_JOINTS}, 3) float array with T >= 2, got {x.shape} {x.dtype}")
        if not np.isfinite(x).all():
            raise bad(f"array {name}: contains NaN or infinite values")
    for split, ks in SPLIT_TRIALS.items():
        for k in ks:
            name = f"split_{split}_trial_{k:02d}"
            s = arrays[name]
            if s.ndim != 1 or s.dtype.kind not in "iu":
                raise bad(f"array {name}: expected a 1-D integer array of start frames, got {s.shape} {s.dtype}")
            if s.size and s.min() < 0:
                raise bad(f"array {name}: start frames must be >= 0, got {s.min()}")
    return arrays


def target_offsets(horizon: int, frames: int = 1) -> list[int]:
    """The frames after the start frame that are targets: the last ``frames`` up to ``horizon``."""
    return list(range(horizon - frames + 1, horizon + 1))


def _split_samples(
    arrays: dict[str, np.ndarray], split: str, horizon: int, per_trial: Sequence[int | None], frames: int = 1
) -> tuple[dict[str, np.ndarray], int]:
    """``pos, vel`` (n, 31, 3) and ``y`` (n, 31, 3), or (n, 31, K, 3) for ``frames`` K > 1, float64, of
    one split, and how many listed start frames were dropped."""
    pos, vel, y, dropped = [], [], [], 0
    for k, cap in zip(SPLIT_TRIALS[split], per_trial):
        x = arrays[f"trial_{k:02d}"]
        v = x[1:] - x[:-1]  # velocity at t: X[t+1] - X[t]; frames 0 .. T-2 have one
        starts = arrays[f"split_{split}_trial_{k:02d}"].astype(np.int64)
        ok = starts + horizon <= len(v) - 1
        dropped += int((~ok).sum())
        starts = starts[ok][:cap]
        pos.append(x[starts])
        vel.append(v[starts])
        if frames == 1:
            y.append(x[starts + horizon])
        else:
            y.append(np.stack([x[starts + t] for t in target_offsets(horizon, frames)], axis=2))
    return {"pos": np.concatenate(pos), "vel": np.concatenate(vel), "y": np.concatenate(y)}, dropped


def _train_caps(n_train: int) -> list[int]:
    n = len(SPLIT_TRIALS["train"])
    return [n_train // n + (1 if i < n_train % n else 0) for i in range(n)]


def build_mocap(spec: MocapSpec, progress: bool = False) -> DataBundle:  # noqa: ARG001
    """CMU motion capture, subject 9 run (31 joints): predict positions 30 frames ahead (EGNO protocol)."""
    path = resolve_mocap_path(spec)
    arrays = load_mocap(path)
    edge_index, edge_attr = skeleton_edges(arrays["edges"], N_JOINTS)
    caps = {
        "train": _train_caps(spec.n_train),
        "val": [None] * len(SPLIT_TRIALS["val"]),
        "test": [None] * len(SPLIT_TRIALS["test"]),
    }
    splits, dropped = {}, {}
    for split in ("train", "val", "test"):
        raw, dropped[split] = _split_samples(arrays, split, spec.horizon, caps[split], spec.frames)
        if len(raw["pos"]) == 0:
            raise ConfigError(
                [("data.horizon", f"no {split} start frame leaves room for horizon {spec.horizon}")], source=str(path)
            )
        fields = {k: torch.from_numpy(np.ascontiguousarray(a)).float() for k, a in raw.items()}
        fields["height"] = height_feature(fields["pos"])
        splits[split] = SkeletonDataset(fields, edge_index, edge_attr)
    return DataBundle(
        splits["train"],
        splits["val"],
        splits["test"],
        RegressionTask(target="y", metric="mse") if spec.frames == 1 else TrajectoryTask(target="y", metric="mse"),
        info={
            "symmetric": False,  # the height feature breaks rotations other than about the vertical axis
            "vertical_axis": 1,
            "horizon": spec.horizon,
            "frames": spec.frames,
            "target_offsets": target_offsets(spec.horizon, spec.frames),
            "dropped": dropped,
            "path": str(path),
        },
    )
