#!/usr/bin/env bash
# GPU check, in one go, for a machine with a CUDA device (e.g. a lent GPU machine):
#   1. which device, and that torch sees it;
#   2. the CUDA tests (they skip cleanly elsewhere) and the data-parallel tests;
#   3. a short GPU benchmark: fp32 vs bf16 autocast vs torch.compile step times (bench_scale.py)
#      and ACE's overhead on the GPU (bench_overhead.py --device cuda).
# Needs acezoo installed with a CUDA build of torch: pip install -e ".[dev]".
set -euo pipefail
cd "$(dirname "$0")/.."
export ACEZOO_HOME="${ACEZOO_HOME:-$(mktemp -d)}"
export MPLBACKEND=Agg

python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device visible to torch"
print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
PY

python -m pytest -q -rs tests/test_scale.py tests/test_distributed.py
python scripts/bench_scale.py --steps 40 --repeats 20
python scripts/bench_overhead.py --device cuda --threads 0 --skip-gen --repeats 20
