"""Molecule inputs: atoms and positions in, the batch the QM9 models read.

The QM9 models (``*-qm9*``) read each atom's position ``pos`` (Angstrom) and its one-hot element
``onehot`` over (H, C, N, O, F), with the edges their data set used: every atom pair of a
molecule, or the pairs within a radius (``data.graph: radius``; the shipped models: 5 A)::

    model = acezoo.load("egnn-qm9-ace")
    x = acezoo.molecules([["C", "H", "H", "H", "H"]], [methane_pos], radius=5.0)
    with torch.no_grad():
        homo_mev = model.acezoo_inputs.to_units(model(x))   # (1, 1) in meV

Molecules may have different sizes; the batch stacks their atoms (``batch`` says which
molecule each atom belongs to), and graph-level outputs have one row per molecule.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from acezoo.data.graphs import batch_fully_connected_edge_index, radius_edge_index
from acezoo.data.specs import QM9_ELEMENTS
from acezoo.inputs.point_clouds import PointCloudBatch

__all__ = ["molecules", "atomic_numbers"]

_SYMBOLS = {number: symbol for symbol, number in QM9_ELEMENTS.items()}


def atomic_numbers(atoms: Sequence[Any] | torch.Tensor, which: str = "atoms") -> torch.Tensor:
    """Element symbols (``"C"``) or atomic numbers (6) -> ``(n,)`` long; only H, C, N, O, F."""
    if isinstance(atoms, torch.Tensor):
        values = atoms.reshape(-1).tolist()
    elif isinstance(atoms, str):
        raise ValueError(f"{which} must be a sequence of element symbols or atomic numbers, e.g. ['C', 'H'], "
                         f"not the string {atoms!r}")
    else:
        values = list(atoms)
    out = []
    for a in values:
        number = QM9_ELEMENTS.get(a.strip().capitalize()) if isinstance(a, str) else int(a)
        if number not in _SYMBOLS:
            raise ValueError(f"{which}: element {a!r} is not one the QM9 models know; allowed: "
                             f"{', '.join(f'{s} ({n})' for s, n in QM9_ELEMENTS.items())}")
        out.append(number)
    return torch.tensor(out, dtype=torch.long)


def molecules(
    atoms: Sequence[Any] | torch.Tensor,
    pos: Sequence[torch.Tensor] | torch.Tensor,
    *,
    radius: float | None = None,
) -> PointCloudBatch:
    """A batch of molecules for the QM9 models.

    Args:
        atoms: one molecule's elements (symbols ``"C"`` or atomic numbers 6), or a list of them
            (one per molecule).
        pos: that molecule's positions ``(n, 3)`` in Angstrom, or a list of them.
        radius: connect the atoms within this distance (Angstrom) of each other, as a model
            trained with ``data.graph: radius`` expects (``acezoo info NAME`` says which);
            None: every atom pair of a molecule.

    Returns a :class:`~acezoo.inputs.point_clouds.PointCloudBatch` with ``pos``, ``z``,
    ``onehot`` (n, 5) over (H, C, N, O, F), ``edge_index`` and ``batch``.
    """
    single = (isinstance(atoms, torch.Tensor) and atoms.dim() == 1) or (
        not isinstance(atoms, torch.Tensor) and len(atoms) > 0 and isinstance(atoms[0], (str, int)))
    mols, coords = ([atoms], [pos]) if single else (list(atoms), list(pos))
    if len(mols) != len(coords):
        raise ValueError(f"atoms lists {len(mols)} molecules, pos {len(coords)}")
    if not mols:
        raise ValueError("molecules() needs at least one molecule")
    zs, xs = [], []
    for k, (a, x) in enumerate(zip(mols, coords)):
        z = atomic_numbers(a, f"atoms[{k}]" if not single else "atoms")
        x = torch.as_tensor(x)
        if x.dim() != 2 or x.shape != (z.numel(), 3) or not x.is_floating_point():
            raise ValueError(f"pos{'' if single else f'[{k}]'} must be a float tensor of shape ({z.numel()}, 3), "
                             f"one row per atom; got {tuple(x.shape)} {x.dtype}")
        zs.append(z)
        xs.append(x)
    z, position = torch.cat(zs), torch.cat(xs)
    device = position.device
    counts = torch.tensor([t.numel() for t in zs])
    graph = torch.repeat_interleave(torch.arange(len(zs)), counts).to(device)
    ptr = torch.zeros(len(zs) + 1, dtype=torch.long)
    torch.cumsum(counts, 0, out=ptr[1:])
    z = z.to(device)
    onehot = (z[:, None] == torch.tensor(list(QM9_ELEMENTS.values()), device=device)).to(position.dtype)
    if radius is not None and radius <= 0:
        raise ValueError(f"radius must be > 0 (Angstrom), got {radius}")
    edges = (batch_fully_connected_edge_index(graph) if radius is None
             else radius_edge_index(position, graph, radius))
    return PointCloudBatch(pos=position, edge_index=edges, batch=graph, ptr=ptr.to(device), num_graphs=len(zs),
                           extra={"z": z, "onehot": onehot})
