#!/usr/bin/env bash
# Installs the CUDA compiler that `cargo build -p zk-cuda --features cuda`
# uses to turn cuda/kernels.cu into PTX: NVRTC 12.2, pinned, from PyPI,
# into a venv (default $HOME/.cache/agent-ledger/nvrtc, or $ZK_CUDA_TOOLCHAIN),
# created with mode 0700 so that nobody else can change what the build runs.
#
# Why NVRTC and not nvcc: the nvidia-cuda-nvcc-cu12 wheels (12.0 to 12.9)
# ship ptxas and libnvvm but no nvcc driver or front end; the
# nvidia-cuda-nvrtc-cu12 wheel is a complete CUDA C++ to PTX compiler.
# build.rs drives it through scripts/nvrtc-ptx.py. A real nvcc still wins
# when $NVCC is set (or, after this venv, when one is on PATH).
#
# Why 12.2: the PTX it writes is ISA 8.2, which every CUDA 12.2+ driver
# JIT-compiles, so the embedded kernels load on any current H100 host.
# Building PTX needs no GPU. Prints the libnvrtc path on its last line.
set -euo pipefail

VENV="${ZK_CUDA_TOOLCHAIN:-$HOME/.cache/agent-ledger/nvrtc}"
CUDA_PIN="12.2.140"

if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    (umask 077 && python3 -m venv "$VENV")
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "nvidia-cuda-nvrtc-cu12==$CUDA_PIN"

NVRTC="$(find "$VENV/lib" -path '*/nvidia/cuda_nvrtc/lib/libnvrtc.so.12' | head -n 1)"
if [ -z "$NVRTC" ]; then
    echo "install-nvcc: libnvrtc.so.12 not found under $VENV after install" >&2
    exit 1
fi
echo "install-nvcc: NVRTC $CUDA_PIN in $VENV" >&2
echo "$NVRTC"
