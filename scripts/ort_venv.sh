#!/bin/sh
# A virtual environment with ONNX Runtime from PyPI (scripts/pypi_venv.sh); prints its python.
# usage: scripts/ort_venv.sh DIR
exec "$(dirname "$0")/pypi_venv.sh" "$1" onnxruntime,numpy onnxruntime numpy
