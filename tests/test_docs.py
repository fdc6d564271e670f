"""The generated pages and tables of the docs and the README agree with the records they come from."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build_docs():
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_docs", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Every generated file, written afresh to a temporary folder."""
    build_docs = _build_docs()
    files = build_docs.generate(ROOT)
    out = tmp_path_factory.mktemp("generated")
    build_docs.write(files, out)
    return build_docs, files, out


def test_committed_generated_pages_equal_their_regeneration(generated):
    build_docs, files, out = generated
    assert len(files) >= 15
    for rel in files:
        fresh = (out / rel).read_text()
        committed = (ROOT / rel).read_text()
        assert committed == fresh, f"{rel} differs from its records: run `python scripts/build_docs.py`"


def test_editing_a_number_in_a_generated_table_is_caught(generated, tmp_path):
    build_docs, files, _ = generated
    rel = "README.md"
    copy = tmp_path / rel
    shutil.copyfile(ROOT / rel, copy)
    assert build_docs.differences({rel: files[rel]}, tmp_path) == []
    text = copy.read_text()
    block = text.index("<!-- BEGIN generated: ace-pays-off -->")
    digit = re.compile(r"\d").search(text, text.index("| N-body", block))
    changed = str((int(digit.group()) + 1) % 10)
    copy.write_text(text[:digit.start()] + changed + text[digit.end():])
    assert build_docs.differences({rel: files[rel]}, tmp_path) == [rel]


def test_acezoo_list_block_in_the_docs_is_the_real_output():
    real = subprocess.run([sys.executable, "-m", "acezoo", "list"], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.rstrip("\n")
    page = (ROOT / "docs" / "site" / "cli.md").read_text()
    block = re.search(r"<!-- BEGIN generated: acezoo-list -->\n```text\n(.*?)\n```\n<!-- END", page, re.S)
    assert block is not None, "docs/site/cli.md lost its generated `acezoo list` block"
    assert block.group(1) == real
    assert "se3t_nbody_field_resilient" in block.group(1)


def test_every_study_file_has_a_question_page():
    build_docs = _build_docs()
    listed = {name for q in build_docs.QUESTIONS for name in q.studies}
    assert listed == {p.stem for p in (ROOT / "zoo_studies").glob("*.yaml")}
