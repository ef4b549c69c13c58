#!/usr/bin/env bash
# Create .venv and install repdrift with its test and benchmark extras.
# torch is installed first and pinned to the CPU build that pip finds on this kind of machine;
# the package itself declares a normal range (torch>=2.2), so a GPU machine keeps its own torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==${REPDRIFT_TORCH_VERSION:-2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[dev,bench]"
