"""Studies: named contenders x seeds on one base zoo config, run on Ray Tune, judged on validation data.

``acezoo study STUDY.yaml`` (see :mod:`acezoo.studies.command`) runs one; the schema of study
files is :class:`~acezoo.studies.schema.StudySpec`. Ray is needed only to run trials
(``pip install "acezoo[studies]"``); loading a study and summarising its records are plain Python.
"""
from acezoo.studies.loader import Study, load_study
from acezoo.studies.schema import ContenderSpec, StudySpec

__all__ = ["Study", "StudySpec", "ContenderSpec", "load_study"]
