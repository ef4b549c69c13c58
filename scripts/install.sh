#!/usr/bin/env bash
# Create .venv and install repdrift with its test, benchmark and Ray extras.
# torch is installed first, pinned to the CPU build that pip finds on this kind of machine;
# the package itself declares a normal range (torch>=2.2), so a GPU machine keeps its own torch.
# As root on Debian, Chromium is installed for the report's browser test (skipped without it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
        || echo "warning: could not install chromium; the report's browser test will be skipped"
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==${REPDRIFT_TORCH_VERSION:-2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[dev,bench,ray]"
