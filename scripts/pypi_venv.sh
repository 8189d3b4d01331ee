#!/bin/sh
# Makes (once) a virtual environment with packages from PyPI, for the cross-checks and the
# benchmark; prints its python. PyPI's packages are peers, never build dependencies: on
# failure this prints why and exits 1, and its callers skip what needs them.
# usage: scripts/pypi_venv.sh DIR MODULES PACKAGE...   (MODULES: comma-separated, to import)
set -eu
mkdir -p "$1"
dir=$(cd "$1" && pwd) # its python by absolute path
modules=$2
shift 2
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import $modules" 2>/dev/null; then
  echo "$dir/bin/python"
  exit 0
fi
# The python3 first on PATH: PyPI's wheels go into its own environment, not Debian's.
if ! python3 -m venv "$dir" >"$dir.log" 2>&1 ||
   ! "$dir/bin/pip" install -q "$@" >>"$dir.log" 2>&1 ||
   ! "$dir/bin/python" -c "import $modules" >>"$dir.log" 2>&1; then
  echo "cannot install $* from PyPI into $dir: $(tail -1 "$dir.log")" >&2
  exit 1
fi
echo "$dir/bin/python"
