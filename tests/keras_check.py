#!/usr/bin/env python3
"""Keras itself against cnnc's weight files, for test_keras (TensorFlow and Keras from PyPI, in
the virtual environment scripts/keras_venv.sh makes).

usage: keras_check.py NET DIR N
NET: a .net file of conv, pool, dropout, batchnorm, flatten, dense and activation layers,
built here layer for layer as a Keras Sequential model. DIR holds cnnc.h5 and
cnnc.weights.h5 (cnnc's files), inputs.f32 (N images, channels last) and cnnc.f32 (cnnc's
outputs for them). This script loads both files into Keras, predicts and compares with cnnc's
outputs (to 1e-5); then trains the Keras model a few steps, writes keras.h5 (Keras 2's layout,
through Keras' own legacy writer) and keras.weights.h5 (model.save_weights) and keras.f32, its
outputs, for cnnc to load and match.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import numpy as np  # noqa: E402
import keras  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from keras_net import build  # noqa: E402

def main():
    net, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = build(net)
    shape = (n,) + tuple(model.input_shape[1:])
    x = np.fromfile(f"{d}/inputs.f32", dtype=np.float32).reshape(shape)
    want = np.fromfile(f"{d}/cnnc.f32", dtype=np.float32).reshape(n, -1)
    worst = 0.0
    for name in ("cnnc.weights.h5", "cnnc.h5"):
        m = build(net)
        m.load_weights(f"{d}/{name}")
        got = m.predict(x, verbose=0)
        diff = float(np.max(np.abs(got - want)))
        worst = max(worst, diff)
        if diff > 1e-5:
            raise SystemExit(f"{name}: Keras predicts {diff:.3g} away from cnnc")
    # A Keras-trained model for cnnc to load.
    keras.utils.set_random_seed(1)
    trained = build(net)
    trained.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    labels = np.arange(n) % trained.output_shape[-1]
    trained.fit(x, labels, epochs=3, batch_size=max(1, n // 2), verbose=0)
    trained.save_weights(f"{d}/keras.weights.h5")
    from keras.src.legacy.saving import legacy_h5_format
    import h5py
    with h5py.File(f"{d}/keras.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, trained)
    trained.predict(x, verbose=0).astype(np.float32).tofile(f"{d}/keras.f32")
    print(f"Keras {keras.__version__}: cnnc's .h5 and .weights.h5 loaded, largest difference "
          f"{worst:.3g}; a Keras-trained model written")


if __name__ == "__main__":
    main()
