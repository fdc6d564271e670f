"""The section of a model card on the model's inputs and outputs, from its checkpoint folder.

A card written by this acezoo has the section already (:func:`acezoo.hub.card.write_card`); an
older card gets it generated from the folder's config and metrics when it is shown, so that
``acezoo info NAME`` documents every model's inputs. The shipped cards hold it pre-rendered
(a test keeps them equal to what is generated), which keeps ``acezoo info`` free of pydantic.
"""
from __future__ import annotations

import json
from pathlib import Path

from acezoo.run_layout import CONFIG_FILE, METRICS_FILE

__all__ = ["INPUTS_HEADING", "inputs_section", "with_inputs_section"]

INPUTS_HEADING = "## Inputs and outputs"  # the same as acezoo.inputs.describe.INPUTS_HEADING


def inputs_section(folder: Path) -> str:
    """The markdown section for the checkpoint in ``folder`` (a sentence when it cannot be made)."""
    import yaml

    from acezoo.inputs.describe import describe_stored

    raw = yaml.safe_load((folder / CONFIG_FILE).read_text())
    metrics = json.loads((folder / METRICS_FILE).read_text()) if (folder / METRICS_FILE).is_file() else {}
    found = describe_stored(raw, metrics) if isinstance(raw, dict) else "inputs not shown: unreadable config"
    return f"{INPUTS_HEADING}\n\n{found}\n" if isinstance(found, str) else found.markdown()


def with_inputs_section(card: str, folder: Path) -> str:
    """``card`` (a checkpoint's README.md) with :func:`inputs_section` appended, unless it has one."""
    if INPUTS_HEADING in card or not (folder / CONFIG_FILE).is_file():
        return card
    return card.rstrip("\n") + "\n\n" + inputs_section(folder)
