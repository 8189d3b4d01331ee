#!/bin/sh
# Installs the Debian packages a cnnc command needs: `deps.sh build|test|train`.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu

build="gcc make cmake pkg-config flex bison libopenblas-dev libcmocka-dev zlib1g-dev
       libprotobuf-c-dev protobuf-c-compiler libonnx-dev libhdf5-dev"
case "${1:-build}" in
  build) want="$build" ;;
  train) want="$build dataset-fashion-mnist gnuplot-nox" ;;
  # The tests also build with clang's sanitizers, run valgrind, train on real data, run the
  # standalone export on an emulated Cortex-M4, check ONNX files with ONNX's checker and
  # OpenCV, import ONNX's own test cases, import networks exported by PyTorch, and write and
  # read Keras weight files with h5py.
  test)  want="$build clang libclang-rt-14-dev valgrind dataset-fashion-mnist gnuplot-nox
               gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
               python3-onnx python3-opencv libonnx-testdata python3-torch python3-h5py" ;;
  *) echo "usage: $0 build|test|train" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "cnnc: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "cnnc: missing Debian packages:$missing" >&2
  echo "run:  sudo apt-get install -y$missing" >&2
  exit 1
fi
