"""Save nested training state (dicts, lists, numbers, tensors) without pickle.

Tensors go into a safetensors file under their path in the tree (``a/b/0``); the skeleton
(everything that is not a tensor) goes, as JSON, into the file's metadata. Loading parses
JSON and reads raw tensor bytes: nothing in the file can execute code.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from acezoo.io.atomic import atomic_write

__all__ = ["save_tree", "load_tree"]

_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
_INTKEYS = "__intkeys__"


def _split(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = prefix or "_"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, dict):
        int_keys = all(isinstance(k, int) for k in obj) and bool(obj)
        if not int_keys and not all(isinstance(k, str) for k in obj):
            raise TypeError(f"dict keys must be all str or all int at {prefix!r}")
        body = {str(k): _split(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        return {_INTKEYS: body} if int_keys else body
    if isinstance(obj, tuple):
        return {_TUPLE: [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r}")


def _join(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, dict):
        if set(node) == {_TENSOR}:
            return tensors[node[_TENSOR]]
        if set(node) == {_TUPLE}:
            return tuple(_join(v, tensors) for v in node[_TUPLE])
        if set(node) == {_INTKEYS}:
            return {int(k): _join(v, tensors) for k, v in node[_INTKEYS].items()}
        return {k: _join(v, tensors) for k, v in node.items()}
    if isinstance(node, list):
        return [_join(v, tensors) for v in node]
    return node


def save_tree(path: str | Path, tree: Any) -> Path:
    """Write ``tree`` to ``path`` (a safetensors file) atomically."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split(tree, "", tensors)
    meta = {"acezoo_tree": json.dumps(skeleton)}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_tree(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """Read a tree written by :func:`save_tree`."""
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        meta = f.metadata() or {}
        if "acezoo_tree" not in meta:
            raise ValueError(f"{path} is not an acezoo state file (no 'acezoo_tree' metadata)")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return _join(json.loads(meta["acezoo_tree"]), tensors)
