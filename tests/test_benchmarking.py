"""The benchmark records the docs' tables are generated from (``acezoo.benchmarking``)."""
from __future__ import annotations

import json

import pytest
import torch

from acezoo.benchmarking import (Stats, bench_record, cpu_model, environment, ratio_table, stats_table, target_met,
                                write_bench_record)


@pytest.mark.parametrize(("value", "target", "met"), [
    (1.29, "<= 1.3", "yes"), (1.3, "<= 1.3", "yes"), (1.31, "<= 1.3", "NO"), (2.9, "< 3", "yes"),
    (3.0, "< 3", "NO"), (0.5, ">= 1", "NO"), (1.2, "> 1", "yes"), (1.0, "info", "-"),
])
def test_target_met_reads_the_bound(value: float, target: str, met: str) -> None:
    assert target_met(value, target) == met


def test_tables_carry_medians_iqr_and_verdicts() -> None:
    stats = {"a": Stats([0.010, 0.012, 0.011, 0.013]), "b": Stats([0.020, 0.021, 0.022, 0.019])}
    columns, rows = stats_table(stats, {"a": {"parameters": "1,000"}, "b": {"parameters": "2,000"}})
    assert columns == ["contender", "median (ms)", "IQR (ms)", "samples", "parameters"]
    assert rows[0][0] == "a" and rows[0][1] == "11.50" and rows[0][3] == "4" and rows[1][4] == "2,000"
    entries = [{"comparison": "a / b", "ratio": 0.55, "target": "<= 0.5"},
               {"comparison": "c / d", "skipped": "peer not installed", "target": "info"}]
    columns, rows = ratio_table(entries)
    assert rows[0] == ["a / b", "0.550", "<= 0.5", "NO"]
    assert rows[1][1].startswith("skipped") and rows[1][3] == "-"


def test_a_record_names_its_command_and_is_written_whole(tmp_path) -> None:
    record = bench_record("scripts/bench_x.py", ["--repeats", "3"], ["c"], [["1"]], ["a note"], machine="m")
    assert record["command"] == "python scripts/bench_x.py --repeats 3"
    assert record["machine"] == "m" and record["rows"] == [["1"]] and record["notes"] == ["a note"]
    write_bench_record(tmp_path / "x.json", record)
    assert json.loads((tmp_path / "x.json").read_text()) == record
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left behind


def test_a_record_names_the_cpu_it_was_measured_on() -> None:
    name = cpu_model()
    assert name and name == cpu_model()
    assert name in bench_record("scripts/bench_x.py", [], ["c"], [["1"]])["machine"]
    assert environment(torch.device("cpu"))["cpu"] == name
