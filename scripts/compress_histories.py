#!/usr/bin/env python
"""Move the per-epoch histories of committed study records into gzip files beside them.

Every ``<records>/results/<key>.json`` that still holds its ``history`` (records written by
the retired sweep runner) is rewritten as ``acezoo study`` writes records: the history to
``<records>/histories/<key>.json.gz``, the record naming it (``history_file``). Records read
back the same (:func:`acezoo.studies.records.read_record`). Idempotent; run from the
repository root:

    python scripts/compress_histories.py docs/studies
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from acezoo.studies.records import read_record, write_record


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("docs/studies")]
    moved = 0
    for root in roots:
        for path in sorted(root.rglob("results/*.json")):
            raw = json.loads(path.read_text())
            if "history" not in raw or "contender" not in raw:
                continue
            records = path.parent.parent
            write_record(records, raw)
            back = read_record(records, raw["contender"], int(raw["seed"]))
            assert back == raw, f"{path}: the record does not read back the same"
            moved += 1
    print(f"{moved} histories moved to gzip files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
