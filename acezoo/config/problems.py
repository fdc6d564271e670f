"""Pydantic validation errors as ``(field path, message)`` pairs that say what is allowed.

Each message names what is wrong and what would be right: an unknown key gets the closest
allowed key ("did you mean") or the list of allowed keys, a value outside a fixed set of names
(e.g. ``constraints.mode``) the closest name, and an unknown architecture or data set the
closest registered one and how to register one's own (see :mod:`acezoo.plugins`).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from acezoo.plugins import HOW_TO_REGISTER

__all__ = ["problems", "format_loc", "did_you_mean"]


def did_you_mean(word: str, choices: Sequence[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_loc(loc: Sequence[Any], tagged: bool = True) -> str:
    """``('model', 'egnn', 'hidden')`` -> ``model.hidden`` (without the union tag pydantic inserts)."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        # pydantic puts the union tag (e.g. 'egnn') into the location of union members;
        # it is not a key of the user's file, so drop it.
        if tagged and i == 1 and loc[0] in ("model", "data") and isinstance(item, str):
            continue
        parts.append(f"[{item}]" if isinstance(item, int) else str(item))
    return ".".join(parts).replace(".[", "[")


def _model_of(ann: Any) -> type[BaseModel] | None:
    """``ann`` itself if it is a pydantic model class, or the one model of ``Optional[model]``."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    if get_origin(ann) is Union:
        models = [m for m in get_args(ann) if isinstance(m, type) and issubclass(m, BaseModel)]
        return models[0] if len(models) == 1 else None
    return None


def _member(ann: Any, tag: Any) -> type[BaseModel] | None:
    """The member of a discriminated union whose tag field is ``Literal[tag]``."""
    for m in get_args(ann):
        if isinstance(m, type) and issubclass(m, BaseModel):
            for f in m.model_fields.values():
                if get_origin(f.annotation) is Literal and get_args(f.annotation) == (tag,):
                    return m
    return None


def _model_at(root: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model at ``loc`` (keys, union tags, dict keys, list indices) below ``root``."""
    ann: Any = root
    items = list(loc)
    while items:
        item = items.pop(0)
        model = _model_of(ann)
        if model is not None:
            if item not in model.model_fields:
                return None
            ann = model.model_fields[item].annotation
            if get_origin(ann) is Union and _model_of(ann) is None and items:  # pydantic's next item: the tag
                ann = _member(ann, items.pop(0))
            continue
        if get_origin(ann) in (dict, list):
            ann = get_args(ann)[-1]
            continue
        return None
    return _model_of(ann)


def _unknown_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    model = _model_at(root, loc[:-1])
    if model is None:
        return "unknown key"
    keys = list(model.model_fields)
    hint = did_you_mean(str(loc[-1]), keys)
    return f"unknown key{hint}" if hint else f"unknown key; allowed: {', '.join(keys)}"


def _literal(msg: str, ctx: dict[str, Any], value: Any) -> str:
    """pydantic's ``Input should be 'a', 'b' or 'c'``, with the value given and the closest name."""
    options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
    return f"{msg}; got {value!r}" + (did_you_mean(str(value), options) if isinstance(value, str) else "")


def problems(exc: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """Every error of ``exc`` (raised validating ``root``) as ``(field path, message)``."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg, kind, ctx = err["msg"], err["type"], err.get("ctx") or {}
        if kind == "extra_forbidden":
            msg = _unknown_key(root, loc)
        elif kind == "literal_error":
            msg = _literal(msg, ctx, err.get("input"))
        elif kind == "value_error":  # our validators' messages say what is wrong and what is allowed
            msg = msg.removeprefix("Value error, ")
        elif kind == "union_tag_invalid":
            tag, key = ctx.get("tag"), ctx.get("discriminator", "").strip("'")
            allowed = ctx.get("expected_tags", "")
            hint = did_you_mean(str(tag), [t.strip(" '") for t in allowed.split(",")], cutoff=0.5)
            how = f"; {HOW_TO_REGISTER}" if loc and loc[0] in ("model", "data") else ""
            out.append((format_loc((*loc, key), tagged=False), f"unknown value {tag!r}{hint}; allowed: {allowed}{how}"))
            continue
        elif kind == "union_tag_not_found":
            key = ctx.get("discriminator", "").strip("'")
            out.append((format_loc((*loc, key), tagged=False), "missing; it selects the kind of " + str(loc[0])))
            continue
        out.append((format_loc(loc), msg))
    return out
