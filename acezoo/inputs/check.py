"""Check a model's input against its declared fields before any layer runs.

:func:`check_input` walks the fields of a :class:`~acezoo.config.io_fields.ModelIO` in order,
binding each shape symbol (``n``, ``E``, ``B``, ...) at its first use (``n`` from ``pos``, ``E``
from ``edge_index``) and comparing every later use with it, so that ``charge`` of shape ``(n,)``
or an ``edge_attr`` with one row too few is named, with what is expected, instead of failing
deep inside a layer. It also checks dtypes and devices against the model's weights and that
``edge_index`` and ``batch`` hold valid node / graph indices. :func:`attach` runs it as a
forward pre-hook of a loaded model.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from acezoo.config.io_fields import IOField, ModelIO, shape_text
from acezoo.errors import InputError
from acezoo.inputs.describe import SHAPE_SYMBOLS, ModelInputs

__all__ = ["check_input", "attach", "InputCheck"]

_FROM = {"n": "pos", "E": "edge_index"}


def _expected(f: IOField, sizes: dict[str, int]) -> str:
    """``(n, 1)``, and ``= (31, 1)`` where every symbol is bound."""
    concrete = [sizes.get(s, s) if isinstance(s, str) else s for s in f.shape]
    text = f.shape_text
    if all(isinstance(s, int) for s in concrete) and any(isinstance(s, str) for s in f.shape):
        text += f" = {shape_text(tuple(concrete))}"
    return text


def _check_shape(f: IOField, t: torch.Tensor, sizes: dict[str, int], what: str) -> None:
    ok = t.dim() == len(f.shape)
    if ok:
        for want, got in zip(f.shape, t.shape):
            if isinstance(want, int):
                ok = ok and got == want
            elif want in sizes:
                ok = ok and got == sizes[want]
    if not ok:
        bound = [f"{s} = {sizes[s]} ({SHAPE_SYMBOLS.get(s, s)}, from `{_FROM.get(s, '?')}`)"
                 for s in f.shape if isinstance(s, str) and s in sizes]
        raise InputError(f"input `{f.name}` has shape {tuple(t.shape)}; expected {_expected(f, sizes)}"
                         + (f" with {', '.join(bound)}" if bound else "") + f": {what}")
    for want, got in zip(f.shape, t.shape):
        if isinstance(want, str):
            sizes.setdefault(want, int(got))


def _check_kind(f: IOField, t: torch.Tensor, like: torch.Tensor | None, what: str) -> None:
    if f.dtype == "int":
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise InputError(f"input `{f.name}` has dtype {t.dtype}; expected an integer tensor (e.g. torch.long): "
                             f"{what}")
    elif not t.is_floating_point():
        raise InputError(f"input `{f.name}` has dtype {t.dtype}; expected a float tensor: {what}")
    elif like is not None and t.dtype != like.dtype:
        raise InputError(f"input `{f.name}` is {t.dtype} but the model's weights are {like.dtype}: convert the "
                         f"input (e.g. `.to({like.dtype})`) or the model")
    if like is not None and t.device != like.device:
        raise InputError(f"input `{f.name}` is on {t.device} but the model is on {like.device}: move the input "
                         f"(`.to('{like.device}')`)")


def _check_indices(name: str, t: torch.Tensor, limit: int, of: str) -> None:
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= limit):
        raise InputError(f"input `{name}` holds indices in [{int(t.min())}, {int(t.max())}]; expected {of} in "
                         f"[0, {limit - 1}]")


def check_input(io: ModelIO, batch: Any, like: torch.Tensor | None = None, hint: str | None = None,
                meaning: Callable[[IOField], str] | None = None) -> None:
    """Raise :class:`~acezoo.errors.InputError` naming the first input field of ``batch`` that is
    missing or has the wrong shape, dtype or device (``like``: a weight of the model; ``hint``: how
    to build the input; ``meaning``: a field's meaning in the task, default the architecture's)."""
    how = f" Build the input with {hint}." if hint else ""
    if isinstance(batch, torch.Tensor) and io.tensor_input is None:
        names = ", ".join(f.name for f in io.inputs if f.required)
        raise InputError(f"the model reads a batch with the fields {names}, not a bare tensor of shape "
                         f"{tuple(batch.shape)}.{how}")
    if isinstance(batch, dict):
        raise InputError(f"the model reads its input fields as attributes, not from a dict.{how}")
    sizes: dict[str, int] = {}
    for f in io.inputs:
        said = meaning(f) if meaning is not None else f.meaning
        what = f"{said}.{how}" if f.required else said
        value = batch if (io.tensor_input == f.name and isinstance(batch, torch.Tensor)) else getattr(batch, f.name,
                                                                                                      None)
        if value is None:
            if f.required:
                raise InputError(f"input `{f.name}` is missing; expected {_expected(f, sizes)} {f.dtype}: {what}")
            continue
        if not isinstance(value, torch.Tensor):
            raise InputError(f"input `{f.name}` is a {type(value).__name__}; expected a tensor "
                             f"{_expected(f, sizes)}: {what}")
        _check_kind(f, value, like, what)
        _check_shape(f, value, sizes, what)
    if "n" in sizes:
        edges = getattr(batch, "edge_index", None) if io.input("edge_index") else None
        if isinstance(edges, torch.Tensor):
            _check_indices("edge_index", edges, sizes["n"], f"node indices of the {sizes['n']} nodes")
        graphs = getattr(batch, "batch", None) if io.input("batch") else None
        if isinstance(graphs, torch.Tensor):
            _check_indices("batch", graphs, sizes["n"], "graph numbers")


class InputCheck:
    """A forward pre-hook that checks each call's input against ``inputs`` (picklable, unlike a
    closure, so that a loaded model can still be copied or saved whole)."""

    def __init__(self, inputs: ModelInputs) -> None:
        self.inputs = inputs

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        io = self.inputs.io
        if io is None or torch.compiler.is_compiling():
            return
        if len(args) + len(kwargs) != 1:
            raise InputError(f"the model takes one input (a batch{' or an image tensor' if io.tensor_input else ''}), "
                             f"got {len(args)} positional and {len(kwargs)} keyword arguments")
        like = next(module.parameters(), None)
        batch = args[0] if args else next(iter(kwargs.values()))
        check_input(io, batch, like, self.inputs.helper, self.inputs.meaning)


def attach(net: nn.Module, inputs: ModelInputs) -> nn.Module:
    """Set ``net.acezoo_inputs`` and check every call's input against it before the forward pass
    (not while ``torch.compile`` traces it). Returns ``net``."""
    net.acezoo_inputs = inputs  # type: ignore[assignment]
    if inputs.io is not None:
        net.register_forward_pre_hook(InputCheck(inputs), with_kwargs=True)
    return net
