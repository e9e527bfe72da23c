#!/usr/bin/env bash
# Create .venv with everything the test suite needs (CPU only, package registries only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r requirements-dev.txt
# The real `ldm` package (Stability-AI stablediffusion, as A1111 vendors it). --no-deps: its
# declared dependencies pull a CUDA torch and much more; the UNet needs only torch, numpy, einops, PIL.
.venv/bin/python -m pip install -q --no-deps stable-diffusion-sdkit==2.1.5
.venv/bin/python -c "import torch, ldm.modules.diffusionmodules.openaimodel, imageio_ffmpeg; print('dev setup ok: torch', torch.__version__)"
