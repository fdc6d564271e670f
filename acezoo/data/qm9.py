"""QM9 (Ramakrishnan et al. 2014): 130,831 small organic molecules with DFT properties.

The molecules come from the ``qm9pack`` package (MIT), which ships them as CSV files in
``qm9pack/data/``; this module reads those files directly and never imports ``qm9pack`` (its
``__init__`` needs ``pkg_resources``, gone from current setuptools). Layout of the files:

- ``qm9_part1.csv``, ``qm9_part2.csv``, ``qm9_part3.csv``: one row per molecule, ordered by
  the QM9 id ``Index`` (1..133,885, with 3,054 ids absent). Columns used here: ``XYZ_file``, ``Index``, ``N_atoms``, ``Elements`` (e.g.
  ``['C','H','H','H','H']``), ``XYZ_Ang`` (``[[x,y,z],...]`` in Angstrom, B3LYP/6-31G(2df,p)
  geometry) and the 12 properties of :data:`TARGETS`.
- ``qm9_polarizability.csv``: ``XYZ_file`` and the six independent components ``A_xx, A_xy,
  A_yy, A_xz, A_yz, A_zz`` of the static dipole polarizability tensor, in bohr^3 (its trace / 3
  is ``Polarizability_bohr3`` to within 0.006 bohr^3).

**The polarizability tensor is not in the frame of ``XYZ_Ang``.** It is given in another,
molecule-fixed frame: close to a principal-axes frame (for anisotropic molecules the direction
of largest polarizability is x in >99% of cases, and planar molecules mostly lie in the xy
plane), yet e.g. butadiyne (id 23) lies along x in ``XYZ_Ang`` while its tensor is largest along
z, and propyne (id 9) lies along y while its tensor is largest along x. The rotation between the
two frames is not shipped, so the raw ``alpha_tensor`` is meaningful only through its rotation
invariants (eigenvalues, trace). ``target="alpha_tensor"`` instead trains on the tensor rotated
into the frame of ``pos`` by a reconstruction of the missing rotation from the geometry
(:mod:`acezoo.data.qm9_frames`: a Gaussian-style standard orientation), an equivariant target
(``y`` of shape (1, 3, 3) in bohr^3, which rotates as ``R y R^T``); molecules whose axes are
ill-defined (``min_gap``) are left out of every split.

Units of the targets (``y``): energies are converted from hartree to meV with
``1 Eh = 27211.386245988 meV`` (CODATA 2018); the others keep the file's unit. With
``atomization=True`` the free-atom energies of QM9's ``atomref`` table (same DFT level) are
subtracted from U0, U, H and G first, giving atomization energies; the total energies are
large (up to ~2e7 meV), so in float32 ``y`` they are only resolved to ~1-2 meV.

Items are ``Data`` with ``pos`` (n, 3) float32 [Angstrom], ``z`` (n,) long, ``onehot`` (n, 5)
float32 over (H, C, N, O, F), ``y`` (1, 1) float32 in the target's unit (not standardised),
``mol_id`` (1,) long (the QM9 ``Index``) and, with ``polarizability=True``, ``alpha_tensor``
(1, 3, 3) float32 [bohr^3]; edges are built per batch (all pairs, or within ``radius``).

Splits: one permutation of all molecules (``split_seed``) is cut into fixed blocks of
100,000 / 17,748 / 13,083 molecules; a split takes the first ``n_*`` of its block, so the
validation and test sets do not move when ``n_train`` changes. ``subset="qm9_small"`` only
changes the default sizes to 2,000 / 500 / 500 (a fixed random subset for CPU runs).
"""
from __future__ import annotations

import csv
import logging
import time
from importlib import metadata, util
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch

from acezoo.data.bundle import DataBundle
from acezoo.data.cache import cache_path, cached_arrays
from acezoo.data.qm9_frames import standard_orientations, tensors_in_pos_frame
from acezoo.data.ragged_graphs import RaggedGraphDataset
from acezoo.data.specs import QM9Spec
from acezoo.data.specs import QM9Target as Target
from acezoo.data.specs import QM9_ATOMREF as ATOMREF
from acezoo.data.specs import QM9_BLOCKS as BLOCKS
from acezoo.data.specs import QM9_ELEMENTS
from acezoo.data.specs import QM9_SMALL as SMALL
from acezoo.data.standardised_tasks import MAERegressionTask, TensorMAETask
from acezoo.errors import AcezooError

__all__ = [
    "QM9Spec",
    "MAERegressionTask",
    "TensorMAETask",
    "TENSOR_TARGET",
    "build_qm9",
    "load_qm9_arrays",
    "target_values",
    "split_indices",
    "qm9pack_data_dir",
    "TARGETS",
    "ELEMENTS",
    "HARTREE_TO_MEV",
    "N_MOLECULES",
    "MISSING_PACKAGE",
]

HARTREE_TO_MEV = 27211.386245988
"""meV per hartree (CODATA 2018: 1 Eh = 27.211386245988 eV)."""

ELEMENTS: dict[str, int] = QM9_ELEMENTS
"""The elements of QM9 and their atomic numbers; ``onehot`` follows this order."""

TENSOR_TARGET = "alpha_tensor"
"""The 3x3 polarizability tensor [bohr^3], rotated into the frame of ``pos`` (see the module docstring)."""

TARGETS: dict[str, tuple[str, float, str]] = {
    # name: (CSV column, factor from the file's unit to ours, our unit)
    "mu": ("Dipole_debye", 1.0, "D"),  # dipole moment magnitude
    "alpha": ("Polarizability_bohr3", 1.0, "bohr^3"),  # isotropic polarizability
    "homo": ("HOMO_au", HARTREE_TO_MEV, "meV"),
    "lumo": ("LUMO_au", HARTREE_TO_MEV, "meV"),
    "gap": ("HOMO_LUMO_gap_au", HARTREE_TO_MEV, "meV"),
    "r2": ("R2_bohr2", 1.0, "bohr^2"),  # electronic spatial extent <R^2>
    "zpve": ("ZPVE_au", HARTREE_TO_MEV, "meV"),  # zero-point vibrational energy
    "U0": ("InternalEnergy_0K_au", HARTREE_TO_MEV, "meV"),
    "U": ("InternalEnergy_298K_au", HARTREE_TO_MEV, "meV"),
    "H": ("Enthalphy_298K_au", HARTREE_TO_MEV, "meV"),  # sic: the column's spelling
    "G": ("GibbsFreeEnergy_298K_au", HARTREE_TO_MEV, "meV"),
    "Cv": ("Heatcapacity_Cv_cal_mol_K", 1.0, "cal/(mol K)"),
}
"""Target name -> (CSV column, factor to the target's unit, unit)."""
assert set(TARGETS) | {TENSOR_TARGET} == set(get_args(Target))

N_MOLECULES = 130_831
PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
POLAR_FILE = "qm9_polarizability.csv"
POLAR_COLUMNS = ("A_xx", "A_xy", "A_yy", "A_xz", "A_yz", "A_zz")
MISSING_PACKAGE = "the qm9 data set needs the qm9pack package: pip install 'acezoo[qm9]' (or pip install qm9pack)"
_CACHE_VERSION = 1
_LOG = logging.getLogger("acezoo.data")


# --------------------------------------------------------------------------- locating the files


def _package_roots() -> list[Path]:
    """Candidate ``qm9pack`` package directories, found without importing the package."""
    spec = util.find_spec("qm9pack")  # a top-level name: finds, never imports
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec is not None else []
    if not roots:
        try:
            roots = [Path(str(metadata.distribution("qm9pack").locate_file("qm9pack")))]
        except metadata.PackageNotFoundError:
            pass
    return roots


def qm9pack_data_dir() -> Path:
    """The ``qm9pack/data`` folder holding the CSV files (``AcezooError`` when missing)."""
    for root in _package_roots():
        folder = root / "data"
        if all((folder / f).is_file() for f in (*PARTS, POLAR_FILE)):
            return folder
    raise AcezooError(MISSING_PACKAGE)


def _source_key(folder: Path) -> dict[str, Any]:
    try:
        version = metadata.version("qm9pack")
    except metadata.PackageNotFoundError:
        version = "unknown"
    sizes = {f: (folder / f).stat().st_size for f in (*PARTS, POLAR_FILE)}
    return {"source": "qm9pack", "version": version, "sizes": sizes, "v": _CACHE_VERSION}


# --------------------------------------------------------------------------- parsing


def _read_columns(path: Path, wanted: tuple[str, ...]) -> dict[str, list[str]]:
    """The ``wanted`` columns of a CSV file as lists of strings."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        missing = [c for c in wanted if c not in header]
        if missing:
            raise AcezooError(f"{path}: missing columns {missing} (is this qm9pack's QM9 CSV?)")
        pos = [header.index(c) for c in wanted]
        rows = list(reader)
    return {c: [r[i] for r in rows] for c, i in zip(wanted, pos)}


def _parse_elements(cells: list[str]) -> np.ndarray:
    """Atomic numbers of all atoms from cells like ``['C','H','H']`` (one letter per element)."""
    letters = "".join(cells).translate(str.maketrans("", "", "[]', \"")).encode("ascii")
    table = np.zeros(256, dtype=np.int8)
    for symbol, number in ELEMENTS.items():
        table[ord(symbol)] = number
    z = table[np.frombuffer(letters, dtype=np.uint8)]
    if (z == 0).any():
        raise AcezooError(f"QM9 CSV: unexpected element symbols {sorted(set(letters.decode()) - set(ELEMENTS))}")
    return z


def _parse_part(path: Path) -> dict[str, np.ndarray]:
    columns = ("XYZ_file", "Index", "N_atoms", "Elements", "XYZ_Ang", *(c for c, _, _ in TARGETS.values()))
    cols = _read_columns(path, columns)
    n_atoms = np.asarray(cols["N_atoms"], dtype=np.int64)
    z = _parse_elements(cols["Elements"])
    xyz = ",".join(cols["XYZ_Ang"]).replace("[", "").replace("]", "").split(",")
    pos = np.asarray(xyz, dtype=np.float64)
    if z.size != n_atoms.sum() or pos.size != 3 * n_atoms.sum():
        raise AcezooError(f"{path}: atom counts disagree with Elements / XYZ_Ang")
    out = {
        "file": np.asarray(cols["XYZ_file"]),
        "mol_id": np.asarray(cols["Index"], dtype=np.int64),
        "n_atoms": n_atoms,
        "z": z,
        "pos": pos.reshape(-1, 3),
    }
    for name, (column, _, _) in TARGETS.items():
        out[name] = np.asarray(cols[column], dtype=np.float64)
    return out


def _parse_polarizability(path: Path, files: np.ndarray) -> np.ndarray:
    """``(n, 3, 3)`` symmetric tensors in bohr^3, rows matched to ``files`` by ``XYZ_file``."""
    cols = _read_columns(path, ("XYZ_file", *POLAR_COLUMNS))
    comp = np.stack([np.asarray(cols[c], dtype=np.float64) for c in POLAR_COLUMNS], axis=1)
    names = np.asarray(cols["XYZ_file"])
    if not np.array_equal(names, files):
        where = {f: i for i, f in enumerate(names)}
        missing = [f for f in files if f not in where]
        if missing:
            raise AcezooError(f"{path}: no polarizability for {len(missing)} molecules, e.g. {missing[0]}")
        comp = comp[[where[f] for f in files]]
    xx, xy, yy, xz, yz, zz = comp.T
    return np.stack([np.stack([xx, xy, xz], -1), np.stack([xy, yy, yz], -1), np.stack([xz, yz, zz], -1)], -2)


def _parse(folder: Path, progress: bool) -> dict[str, np.ndarray]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(PARTS) + 1, desc="qm9: parsing CSV files", unit="file", disable=not progress)
    parts = []
    for name in PARTS:
        parts.append(_parse_part(folder / name))
        bar.update(1)
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arrays["alpha_tensor"] = _parse_polarizability(folder / POLAR_FILE, arrays["file"])
    bar.update(1)
    bar.close()
    order = np.argsort(arrays["mol_id"], kind="stable")
    if not np.array_equal(order, np.arange(order.size)):
        raise AcezooError("qm9pack CSV files are not ordered by molecule index")
    n_atoms = arrays.pop("n_atoms")
    arrays.pop("file")
    arrays["node_offsets"] = np.concatenate([[0], np.cumsum(n_atoms)])
    return arrays


def load_qm9_arrays(progress: bool = False) -> dict[str, np.ndarray]:
    """All of QM9 as arrays, parsed from qm9pack's CSV files once and then cached (npz).

    Keys: ``z`` (atoms,) int8; ``pos`` (atoms, 3) float64 [Angstrom]; ``node_offsets``
    (molecules + 1,) int64 (molecule ``m`` owns atoms ``node_offsets[m]:node_offsets[m+1]``);
    ``mol_id`` (molecules,) int64, the QM9 ``Index``; one (molecules,) float64 array per name in
    :data:`TARGETS` *in the CSV's unit* (hartree for energies; see :func:`target_values`);
    ``alpha_tensor`` (molecules, 3, 3) float64 [bohr^3], in its own frame (module docstring).
    """
    folder = qm9pack_data_dir()
    path = cache_path("qm9", "qm9pack", _source_key(folder))
    first = not path.exists()
    t0 = time.perf_counter()
    arrays = cached_arrays(path, lambda: _parse(folder, progress))
    seconds = time.perf_counter() - t0
    if first:
        _LOG.info("qm9: first build: parsed qm9pack's CSV files in %.1f s, cached at %s", seconds, path)
    else:
        _LOG.info("qm9: loaded the cache %s in %.2f s", path, seconds)
    return arrays


def target_values(arrays: dict[str, np.ndarray], target: str, atomization: bool = False) -> np.ndarray:
    """``(molecules,)`` float64 values of ``target`` in its unit (``TARGETS[target][2]``).

    ``y = factor * raw``; with ``atomization`` (U0, U, H, G only)
    ``y = factor * (raw - sum_atoms E_atom(Z))`` with ``E_atom`` from :data:`ATOMREF`.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown QM9 scalar target {target!r}; known: {', '.join(TARGETS)}")
    _, factor, _ = TARGETS[target]
    raw = arrays[target].astype(np.float64)
    if atomization:
        if target not in ATOMREF:
            raise ValueError(f"atomization applies to {', '.join(ATOMREF)} only, not {target!r}")
        ref = np.zeros(max(ELEMENTS.values()) + 1)
        for symbol, energy in ATOMREF[target].items():
            ref[ELEMENTS[symbol]] = energy
        per_atom = ref[arrays["z"].astype(np.int64)]
        raw = raw - np.add.reduceat(per_atom, arrays["node_offsets"][:-1])  # every molecule has atoms
    return raw * factor


# --------------------------------------------------------------------------- the data set


def split_indices(n_molecules: int, spec: QM9Spec) -> dict[str, np.ndarray]:
    """Molecule rows of each split: the first ``n_*`` of fixed blocks of one permutation."""
    if n_molecules < sum(BLOCKS.values()):
        raise AcezooError(f"qm9: expected {sum(BLOCKS.values())} molecules, the CSV files hold {n_molecules}")
    perm = np.random.default_rng(spec.split_seed).permutation(n_molecules)
    sizes, out, start = spec.sizes(), {}, 0
    for split, block in BLOCKS.items():
        out[split] = np.sort(perm[start : start + sizes[split]])
        start += block
    return out


def _tensor_target(arrays: dict[str, np.ndarray], min_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Polarizability tensors in the frame of ``pos`` (molecules, 3, 3), and which molecules to keep."""
    axes, gap = standard_orientations(arrays["z"], arrays["pos"], arrays["node_offsets"])
    return tensors_in_pos_frame(arrays["alpha_tensor"], axes), gap >= min_gap


def _base_dataset(arrays: dict[str, np.ndarray], y: np.ndarray, spec: QM9Spec) -> RaggedGraphDataset:
    nodes = {
        "pos": torch.from_numpy(arrays["pos"].astype(np.float32)),
        "z": torch.from_numpy(arrays["z"].astype(np.int64)),
    }
    graph = {
        "y": torch.from_numpy(y.astype(np.float32)).reshape(y.shape[0], *(y.shape[1:] or (1,))),
        "mol_id": torch.from_numpy(arrays["mol_id"].astype(np.int64)),
    }
    if spec.polarizability:
        graph["alpha_tensor"] = torch.from_numpy(arrays["alpha_tensor"].astype(np.float32))
    offsets = torch.from_numpy(arrays["node_offsets"].astype(np.int64))
    return RaggedGraphDataset(nodes, graph, offsets, edges=spec.graph, radius=spec.radius)


def _with_onehot(ds: RaggedGraphDataset) -> RaggedGraphDataset:
    numbers = torch.tensor(list(ELEMENTS.values()))
    ds.node_fields["onehot"] = (ds.node_fields["z"][:, None] == numbers).float()
    return ds


def build_qm9(spec: QM9Spec, progress: bool = False) -> DataBundle:
    """QM9 molecular property regression (MAE in the target's unit)."""
    arrays = load_qm9_arrays(progress)
    n_molecules = arrays["mol_id"].size
    rows = split_indices(n_molecules, spec)
    info: dict[str, Any] = {"target": spec.target, "atomization": spec.atomization, "n_molecules": n_molecules,
                            "symmetric": True}  # invariant scalars; the tensor is equivariant
    if spec.target == TENSOR_TARGET:
        y, keep = _tensor_target(arrays, spec.min_gap)
        info["left_out"] = {s: int((~keep[r]).sum()) for s, r in rows.items()}
        rows = {s: r[keep[r]] for s, r in rows.items()}
        train_y = y[rows["train"]]
        mean = float(np.trace(train_y, axis1=1, axis2=2).mean() / 3)
        std = float((train_y - mean * np.eye(3)).std())
        unit, task_cls = "bohr^3", TensorMAETask
    else:
        y = target_values(arrays, spec.target, spec.atomization)
        train_y = y[rows["train"]]
        mean, std = float(train_y.mean()), float(train_y.std())
        unit, task_cls = TARGETS[spec.target][2], MAERegressionTask
    std = std if std > 0 else 1.0
    base = _base_dataset(arrays, y, spec)
    splits = {s: _with_onehot(base.subset(torch.from_numpy(r))) for s, r in rows.items()}
    info.update(unit=unit, mean=mean, std=std)
    task = task_cls(target="y", metric="mae", mean=mean, std=std, loss_kind=spec.loss)
    return DataBundle(splits["train"], splits["val"], splits["test"], task, info)  # type: ignore[arg-type]
