#!/bin/sh
# Makes (once) a virtual environment with ONNX Runtime from PyPI, for the cross-checks and the
# benchmark; prints its python. ONNX Runtime is a peer, never a build dependency: on failure
# this prints why and exits 1, and its callers skip what needs it.
# usage: scripts/ort_venv.sh DIR
set -eu
mkdir -p "$1"
dir=$(cd "$1" && pwd) # its python by absolute path
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import onnxruntime, numpy' 2>/dev/null; then
  echo "$dir/bin/python"
  exit 0
fi
# The python3 first on PATH: PyPI's wheels go into its own environment, not Debian's.
if ! python3 -m venv "$dir" >"$dir.log" 2>&1 ||
   ! "$dir/bin/pip" install -q onnxruntime numpy >>"$dir.log" 2>&1; then
  echo "cannot install onnxruntime from PyPI into $dir: $(tail -1 "$dir.log")" >&2
  exit 1
fi
echo "$dir/bin/python"
