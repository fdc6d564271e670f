"""Run by tests/test_distributed.py under torchrun: train a few steps, save this rank's final state.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/dist_worker.py OUT CONFIG [k=v ...]
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

import acezoo


def main() -> None:
    out, config, overrides = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    result = acezoo.train(acezoo.load_config(config, overrides), keep_final_state=True)
    rank = int(os.environ.get("RANK", "0"))
    final = result.final_state
    assert final is not None
    tensors = {f"w/{k}": v.contiguous() for k, v in final["weights"].items()}
    tensors["multipliers"] = torch.tensor(list(final["multipliers"].values()), dtype=torch.float64)
    tensors["slacks"] = torch.tensor(list(final["slacks"].values()), dtype=torch.float64)
    save_file(tensors, str(out / f"rank{rank}.safetensors"))
    (out / f"rank{rank}.json").write_text(json.dumps({"run_dir": str(result.run_dir),
                                                      "epochs": len(result.history),
                                                      "test": result.metrics["test"]}))


if __name__ == "__main__":
    main()
