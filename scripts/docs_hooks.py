"""MkDocs hook (``hooks:`` in mkdocs.yml): copy the images the pages show before every build."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_docs  # noqa: E402


def on_pre_build(config: Any, **kwargs: Any) -> None:
    build_docs.copy_images(Path(config["config_file_path"]).resolve().parent)
