"""The study's storage (a folder or a URI such as ``s3://bucket/studies``), through pyarrow's file systems.

Layout, one Tune experiment per study: ``<storage>/<study>/<contender>-s<seed>/`` holds the
trial's checkpoints (``checkpoint_NNNNNN/``, each the whole resumable run directory with a
``acezoo_trial.json`` marker naming its epoch) and, once the trial has finished, its record
``acezoo_record.json``. A new run of the study finds both here, so finished trials are kept
and interrupted ones resume from their newest checkpoint, whichever Tune experiment wrote it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["Storage", "MARKER_FILE", "RECORD_FILE", "resolve_storage"]

MARKER_FILE = "acezoo_trial.json"
RECORD_FILE = "acezoo_record.json"


def resolve_storage(storage: str | Path) -> str:
    """A URI as given; a local path made absolute (Tune's ``storage_path`` needs one)."""
    text = str(storage)
    return text if "://" in text else str(Path(text).expanduser().resolve())


class Storage:
    """Read and write a study's trial folders on a local or remote file system."""

    def __init__(self, storage: str, study: str) -> None:
        import pyarrow.fs as pafs

        self.uri = resolve_storage(storage)
        if "://" in self.uri:
            self.fs, root = pafs.FileSystem.from_uri(self.uri)
        else:
            self.fs, root = pafs.LocalFileSystem(), self.uri
        self.root = f"{root.rstrip('/')}/{study}"

    def trial_dir(self, key: str) -> str:
        """The trial's folder as a path of this file system (no scheme)."""
        return f"{self.root}/{key}"

    def trial_uri(self, key: str) -> str:
        """The trial's folder as the user names it: a local path, or a URI with its scheme."""
        return f"{self.uri.rstrip('/')}/{self.root.rsplit('/', 1)[1]}/{key}"

    def _read_json(self, path: str) -> Any | None:
        try:
            with self.fs.open_input_stream(path) as f:
                return json.loads(f.read().decode())
        except (FileNotFoundError, OSError, ValueError):
            return None

    def read_json(self, name: str) -> Any | None:
        """A JSON file at the study's root (e.g. the MLflow parent run's id), or None."""
        return self._read_json(f"{self.root}/{name}")

    def write_json(self, name: str, data: Any) -> None:
        self.fs.create_dir(self.root, recursive=True)
        with self.fs.open_output_stream(f"{self.root}/{name}") as f:
            f.write(json.dumps(data).encode())

    def read_record(self, key: str) -> dict[str, Any] | None:
        return self._read_json(f"{self.trial_dir(key)}/{RECORD_FILE}")

    def write_record(self, key: str, record: dict[str, Any]) -> None:
        """Write the record whole: a temporary name, then a move (atomic on local disks)."""
        self.fs.create_dir(self.trial_dir(key), recursive=True)
        tmp = f"{self.trial_dir(key)}/.{RECORD_FILE}.{os.getpid()}.tmp"
        with self.fs.open_output_stream(tmp) as f:
            f.write(json.dumps(record).encode())
        self.fs.move(tmp, f"{self.trial_dir(key)}/{RECORD_FILE}")

    def newest_checkpoint(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The trial's checkpoint folder with the most epochs done, and its marker; None if it has none."""
        import pyarrow.fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.trial_dir(key), allow_not_found=True))
        except OSError:
            return None
        best: tuple[str, dict[str, Any]] | None = None
        for info in infos:
            if info.type != pafs.FileType.Directory or not info.base_name.startswith("checkpoint_"):
                continue
            marker = self._read_json(f"{info.path}/{MARKER_FILE}")
            if marker is not None and (best is None or marker["epoch"] > best[1]["epoch"]):
                best = (info.path, marker)
        return best

    def download(self, folder: str, to: Path) -> None:
        """Copy a checkpoint folder to the local directory ``to``."""
        import pyarrow.fs as pafs

        to.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(folder, str(to), source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem())
