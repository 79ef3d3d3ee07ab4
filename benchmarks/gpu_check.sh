#!/usr/bin/env bash
# The GPU checks of --device/--precision and the fast recipe, for a machine with a CUDA GPU:
#   bash benchmarks/gpu_check.sh [DATA_DIR]
# 1. the tests marked gpu (tests/test_gpu.py), 2. the time-to-accuracy benchmark on CUDA
# (5 seeds of the public recipe and of --recipe fast, 1 seed of the chapter recipe; warm-up
# runs are off the clock and printed apart). Needs MNIST in DATA_DIR (default: the shared
# copy next to the checkout, else $CNNKIT_DATA / ~/.cache/cnnkit, fetched on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DATA=${1:-}
if [ -z "$DATA" ] && [ -d ../shared/data/mnist ]; then DATA=../shared/data/mnist; fi
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print('torch', torch.__version__, torch.cuda.get_device_name(0))"
"$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py
"$PY" benchmarks/bench_time_to_accuracy.py --device cuda --seeds 5 --chapter-seeds 1 \
  ${DATA:+--data-dir "$DATA"}
