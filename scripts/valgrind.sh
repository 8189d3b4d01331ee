#!/bin/sh
# Runs cnnc under valgrind on every .net file of the repository, good and bad, and through a
# short training run on a few real images, then a compiled trainer (two threads); fails on any
# invalid access or leak.
set -eu
cnnc=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

prog=$cnnc
check() { # check DESCRIPTION ARGS...: $prog under valgrind must report no error
  what=$1
  shift
  valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all \
    --suppressions="$(dirname "$0")/valgrind-hdf5.supp" \
    --log-file="$tmp/log" "$prog" "$@" >/dev/null 2>&1 && status=0 || status=$?
  if [ "$status" -eq 99 ] || [ -s "$tmp/log" ]; then
    cat "$tmp/log" >&2
    echo "valgrind: errors in: $prog $*" >&2
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
}

for f in models/*.net tests/nets/*.net tests/bad/*.net; do
  check "$f" --check "$f"
  check "$f" --summary "$f"
done

# 64 training and 64 test images cut from Fashion-MNIST, with IDX headers saying so.
data=/usr/share/datasets/fashion-mnist
if [ -r "$data/train-images-idx3-ubyte.gz" ]; then
  for split in train t10k; do
    { printf '\000\000\010\003\000\000\000\100\000\000\000\034\000\000\000\034'
      zcat "$data/$split-images-idx3-ubyte.gz" | tail -c +17 | head -c 50176; } \
      > "$tmp/$split-images-idx3-ubyte"
    { printf '\000\000\010\001\000\000\000\100'
      zcat "$data/$split-labels-idx1-ubyte.gz" | tail -c +9 | head -c 64; } \
      > "$tmp/$split-labels-idx1-ubyte"
  done
  check train run tests/nets/mnist_tiny.net train --data "$tmp" --epochs 2 --validation 0.25 \
    --save "$tmp/ck" --log "$tmp/log"
  check resume run tests/nets/mnist_tiny.net train --data "$tmp" --epochs 3 --save "$tmp/ck" --resume
  check eval run tests/nets/mnist_tiny.net eval --data "$tmp" --load "$tmp/ck" --log "$tmp/log"
  check predict run tests/nets/mnist_tiny.net predict --data "$tmp" --load "$tmp/ck" --limit 5
  check kfold run tests/nets/mnist_tiny.net train --data "$tmp" --kfold 3 --log "$tmp/kf"
  check "another network's checkpoint" run models/l1.net eval --data "$tmp" --load "$tmp/ck"
  check "dropout and batchnorm" run models/dropout.net train --data "$tmp" --limit 16
  check plot plot "$tmp/log" "$tmp/kf"
  # The standalone export, float and int8 (calibrated on the 64 images), and the exports
  # themselves run on a test image and on every byte value.
  check export export tests/nets/mnist_tiny.net --weights "$tmp/ck" -o "$tmp/tiny.c" --plan
  check "export int8" export tests/nets/mnist_tiny.net --weights "$tmp/ck" -o "$tmp/tiny8.c" \
    --int8 --calibrate 64 --data "$tmp"
  check "export of another network's checkpoint" export models/l1.net --weights "$tmp/ck" -o "$tmp/x.c"
  check onnx onnx tests/nets/mnist_tiny.net --weights "$tmp/ck" -o "$tmp/tiny.onnx"
  check import import "$tmp/tiny.onnx" -o "$tmp/imported.net" --weights "$tmp/imported.ckpt"
  check "eval of the imported network" run "$tmp/imported.net" eval --data "$tmp" \
    --load "$tmp/imported.ckpt"
  # Keras weight files, both layouts, written and read back.
  check "keras h5 save" run tests/nets/mnist_tiny.net train --data "$tmp" --epochs 1 \
    --save "$tmp/tiny.h5"
  check "keras h5 load" run tests/nets/mnist_tiny.net eval --data "$tmp" --load "$tmp/tiny.h5"
  check "keras 3 save" run tests/nets/mnist_tiny.net train --data "$tmp" --epochs 1 \
    --save "$tmp/tiny.weights.h5"
  check "keras 3 load" run tests/nets/mnist_tiny.net eval --data "$tmp" \
    --load "$tmp/tiny.weights.h5"
  check "keras file of another network" run models/l1.net eval --data "$tmp" --load "$tmp/tiny.h5"
  check "import of a file that is not ONNX" import "$tmp/ck" -o "$tmp/x.net"
  cat >"$tmp/run_export.c" <<'EOF2'
#include <stdio.h>
int mnist_tiny_predict_u8(const unsigned char *pixels, float *probabilities);
int mnist_tiny_predict_ws(void *workspace, const float *input, float *probabilities);
int main(void)
{
    static unsigned char pixels[784];
    static float x[784], p[10], ws[1 << 16];
    int s = 0;
    for (int v = 0; v < 256; v++) {
        for (int i = 0; i < 784; i++)
            pixels[i] = (unsigned char)(v + i), x[i] = pixels[i] / 255.0f;
        s += mnist_tiny_predict_u8(pixels, p) + mnist_tiny_predict_ws(ws, x, p);
    }
    printf("%d\n", s);
    return 0;
}
EOF2
  for kind in tiny tiny8; do
    cc -O1 -g "$tmp/run_export.c" "$tmp/$kind.c" -lm -o "$tmp/run_$kind"
    prog=$tmp/run_$kind
    check "the export $kind.c"
  done
  prog=$cnnc
  # A compiled trainer, built portable (valgrind knows no AVX-512, and libcnnrt then takes
  # OpenBLAS's path), with batchnorm's barriers and the pool's two threads.
  cc -O1 -g -I runtime generated/batchnorm.c "$(dirname "$cnnc")/runtime/libcnnrt.a" \
    $(pkg-config --libs hdf5-serial) -lopenblas -lz -lm -o "$tmp/batchnorm"
  prog=$tmp/batchnorm
  check "compiled trainer" train --data "$tmp" --epochs 1 --validation 0.25 --threads 2 \
    --save "$tmp/bn.ckpt"
  check "compiled eval" eval --data "$tmp" --load "$tmp/bn.ckpt" --threads 2
fi
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
