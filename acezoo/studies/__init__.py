"""Studies: named contenders x seeds on one base zoo config, run on Ray Tune, judged on validation data.

``acezoo study STUDY.yaml`` (see :mod:`acezoo.studies.command`) runs one; the schema of study
files is :class:`~acezoo.studies.schema.StudySpec`. Ray is needed only to run trials
(``pip install "acezoo[studies]"``); loading a study and summarising its records are plain Python.
The names below are imported on first use, so that building the ``acezoo`` command line (which
registers ``study``) imports neither pydantic nor YAML.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"Study": "acezoo.studies.loader", "load_study": "acezoo.studies.loader",
         "StudySpec": "acezoo.studies.schema", "ContenderSpec": "acezoo.studies.schema"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'acezoo.studies' has no attribute {name!r}")
