#!/usr/bin/env bash
# Prepares build/gpu_check/ for benchmarks/gpu_check.py on a GPU machine that has Python,
# JAX/PyTorch, numpy, scipy, h5py, opencv and pandas but no keras, TensorFlow or network.
# Run here, from anywhere, with the project's venv (network and TensorFlow needed):
#
#     benchmarks/gpu_check_prepare.sh [FOLDER]      # default build/gpu_check (ignored by git)
#
# 1. wheels/: keras and namex (pure Python) and optree (compiled: one wheel per CPython 3.11 to
#    3.13), the versions this project pins and tests, downloaded without their dependencies;
# 2. the MobileNetV2 weights file (from ../shared), 512 CelebA photos and labels (photos.npy,
#    labels.npy; research use only: never commit them), and the CPU TensorFlow reference
#    features of the same images (reference.npz, reference.json): gpu_check.py --make-reference.
# Then carry the folder along (`carry: ["build/gpu_check"]`) and run, on the GPU machine:
#     python3 benchmarks/gpu_check.py --out OUT_DIR [--backend jax|torch]
# and, back here, record its figures in benchmarks/results/gpu_check.json:
#     PYTHONPATH=. python benchmarks/gpu_check_record.py OUT_DIR/gpu_check.json
set -euo pipefail
cd "$(dirname "$0")/.."
FOLDER=${1:-build/gpu_check}
PYTHON=${PYTHON:-.venv/bin/python}
version() { "$PYTHON" -c "import importlib.metadata as m; print(m.version('$1'))"; }
mkdir -p "$FOLDER/wheels"
rm -f "$FOLDER"/wheels/*.whl
"$PYTHON" -m pip download -q --no-deps -d "$FOLDER/wheels" \
    "keras==$(version keras)" "namex==$(version namex)"
for python in 3.11 3.12 3.13; do  # keras 3.15 needs Python >= 3.11
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$python" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$FOLDER/wheels" "optree==$(version optree)"
done
"$PYTHON" benchmarks/gpu_check.py --make-reference --files "$FOLDER"
ls -l "$FOLDER" "$FOLDER/wheels"
du -sh "$FOLDER"
