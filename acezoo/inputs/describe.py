"""What a trained model reads and returns, in words: its architecture's fields and shapes, the
task's meanings and units, and the call that builds its input (no torch).

:func:`describe` combines the architecture spec's :meth:`~acezoo.config.base.ArchSpec.io`
(names, shapes) with the data set spec's :meth:`~acezoo.config.base.DatasetSpec.field_notes`
(what each field means there, with units) and, for a model that predicts standardised targets
(QM9), the scale stored with its metrics: ``value = output * std + mean``. A loaded model carries
the result as ``model.acezoo_inputs``; model cards and ``acezoo info NAME`` print it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acezoo.config.io_fields import IOField, ModelIO

__all__ = ["ModelInputs", "describe", "describe_stored", "SHAPE_SYMBOLS", "INPUTS_HEADING"]

INPUTS_HEADING = "## Inputs and outputs"  # acezoo.hub.card_inputs looks for it
SHAPE_SYMBOLS = {"n": "nodes of the batch (every graph's nodes, stacked)", "E": "edges", "B": "graphs",
                 "H": "image height", "W": "image width"}


@dataclass
class ModelInputs:
    """A model's documented inputs and outputs (``io`` None: its architecture declares none)."""

    arch: str
    dataset: str
    io: ModelIO | None
    notes: dict[str, str] = field(default_factory=dict)
    helper: str | None = None
    target_scale: dict[str, float] | None = None
    unit: str = ""
    standardised: bool = False

    def meaning(self, f: IOField) -> str:
        """The task's meaning of a field (with units), else the architecture's."""
        text = self.notes.get(f.name) or f.meaning
        if f in (self.io.outputs if self.io else ()) and self.target_scale:
            text += f" [std {self.target_scale['std']:.6g}, mean {self.target_scale['mean']:.6g}{self._unit()}]"
        elif f in (self.io.outputs if self.io else ()) and self.unit:
            text += f" [{self.unit}]"
        return text

    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def to_units(self, output: Any) -> Any:
        """A standardised output in the target's unit, ``output * std + mean`` (``+ mean * I`` for a
        3x3 tensor); the output of a model that predicts its target directly, unchanged."""
        if not self.standardised:
            return output
        if not self.target_scale:
            from acezoo.errors import AcezooError

            raise AcezooError(f"this {self.dataset} model predicts a standardised target, but its metrics.json "
                              "records no target_scale (mean, std): it was trained before acezoo stored them")
        std, mean = self.target_scale["std"], self.target_scale["mean"]
        if output.dim() >= 2 and tuple(output.shape[-2:]) == (3, 3):
            import torch

            return output * std + mean * torch.eye(3, dtype=output.dtype, device=output.device)
        return output * std + mean

    def _rows(self) -> list[tuple[str, str, str, str]]:
        assert self.io is not None
        rows = [(f.name, f.shape_text, f.dtype + ("" if f.required else ", optional"), self.meaning(f))
                for f in self.io.inputs]
        return rows

    def markdown(self) -> str:
        """The card's section: how to build the input, a table of the fields, the output."""
        lines = [INPUTS_HEADING, ""]
        if self.io is None:
            undeclared = f"The architecture `{self.arch}` does not declare its inputs (`ArchSpec.io`)."
            return "\n".join([*lines, undeclared, ""])
        lines += [f"Build the input with `{self.helper}`.", ""] if self.helper else []
        lines += ["| input | shape | dtype | meaning |", "|---|---|---|---|"]
        lines += [f"| `{n}` | {s} | {d} | {m} |" for n, s, d, m in self._rows()]
        lines.append("")
        for out in self.io.outputs:
            lines.append(f"Output: {out.shape_text} {out.dtype}, {self.meaning(out)}.")
        lines += ["", self._legend(), *self.io.notes, ""]
        return "\n".join(line for line in lines if line is not None)

    def _legend(self) -> str:
        assert self.io is not None
        used = {s for f in (*self.io.inputs, *self.io.outputs) for s in f.shape if isinstance(s, str)}
        names = dict(SHAPE_SYMBOLS, B="images" if self.io.tensor_input else "graphs")
        return "Shapes: " + "; ".join(f"{s} = {names[s]}" for s in names if s in used) + "."

    def __str__(self) -> str:
        if self.io is None:
            return f"{self.arch}: inputs not declared by the architecture"
        how = "an image tensor" if self.io.tensor_input else "a batch, read by attribute"
        lines = [f"inputs ({how}; build it with {self.helper}):" if self.helper else f"inputs ({how}):"]
        rows = self._rows()
        w = [max(len(r[c]) for r in rows) for c in range(3)]
        lines += [f"  {n:{w[0]}}  {s:{w[1]}}  {d:{w[2]}}  {m}" for n, s, d, m in rows]
        for out in self.io.outputs:
            lines.append(f"output: {out.shape_text} {out.dtype}, {self.meaning(out)}")
        lines.append(self._legend())
        lines += list(self.io.notes)
        return "\n".join(lines)

    __repr__ = __str__


def default_helper(io: ModelIO) -> str:
    """The generic way to build an input for ``io``: a plain tensor, or :func:`acezoo.point_cloud`."""
    if io.tensor_input:
        shape = io.input(io.tensor_input).shape_text  # type: ignore[union-attr]
        return f"a float tensor {shape}: model(images)"
    args = ["pos"] + (["vel"] if io.input("vel") else [])
    if io.input("edge_attr") is not None:  # the data set's own edges carry the attributes: pass both
        args.append("edge_index=edge_index")
    args += [f"{f.name}={f.name}" for f in io.inputs if f.required and f.name not in ("pos", "vel", "edge_index")]
    return f"acezoo.point_cloud({', '.join(args)})"


def describe(model_spec: Any, data_spec: Any, metrics: dict[str, Any] | None = None) -> ModelInputs:
    """The :class:`ModelInputs` of a model built from ``model_spec`` for ``data_spec``."""
    metrics = metrics or {}
    io = model_spec.io()
    helper = None
    if io is not None:
        helper = data_spec.input_helper(io) or default_helper(io)
    scale = metrics.get("target_scale")
    return ModelInputs(model_spec.arch, data_spec.dataset, io, data_spec.field_notes(), helper,
                       dict(scale) if scale else None, metrics.get("unit", ""),
                       bool(getattr(data_spec, "standardised_target", False)))


def describe_stored(config: dict[str, Any], metrics: dict[str, Any] | None = None) -> ModelInputs | str:
    """:func:`describe` for a stored (resolved) config dict; a sentence saying why not when its
    architecture or data set is not registered here or does not validate."""
    from acezoo import registry

    try:
        arch = registry.get_arch(config["model"]["arch"]).spec.model_validate(config["model"])
        data = registry.get_dataset(config["data"]["dataset"]).spec.model_validate(config["data"])
    except KeyError as exc:
        return f"inputs not shown: {exc.args[0] if exc.args else exc}"
    except ValueError as exc:  # pydantic's ValidationError
        return f"inputs not shown: the stored config does not validate here ({str(exc).splitlines()[0]})"
    return describe(arch, data, metrics)
