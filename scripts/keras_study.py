#!/usr/bin/env python3
"""The study's five networks trained in Keras itself (TensorFlow CPU from PyPI, in the virtual
environment scripts/keras_venv.sh makes), with the study's settings: Adam 0.001, batch 32,
15 epochs, validation_split 0.2, inputs scaled to [0, 1]; one run per model and seed.

usage: keras_study.py OUT_DIR MODEL... [--seeds 42,1,2,3] [--epochs 15] [--threads 2]
                       [--step EVERY:FACTOR]
--step multiplies the learning rate by FACTOR every EVERY epochs (cnnc's --schedule
step:EVERY:FACTOR; the run is named MODEL-step). Writes OUT_DIR/MODEL-seed-S.json per run (the history per epoch, the test loss and accuracy,
the seconds it took) and prints one line per run.
"""
import argparse
import gzip
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_net import build  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--seeds", default="42,1,2,3")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--step", default=None)
    a = ap.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    os.makedirs(a.out, exist_ok=True)
    load = lambda split, kind: idx(os.path.join(  # noqa: E731
        a.data, f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"))
    xtr = load("train", "images")[..., None].astype("float32") / 255.0
    ytr = load("train", "labels").astype("int64")
    xte = load("t10k", "images")[..., None].astype("float32") / 255.0
    yte = load("t10k", "labels").astype("int64")
    for name in a.models:
        for seed in [int(s) for s in a.seeds.split(",")]:
            keras.utils.set_random_seed(seed)
            model = build(os.path.join(ROOT, "models", name + ".net"))
            model.compile(optimizer=keras.optimizers.Adam(0.001),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            callbacks, run_name = [], name
            if a.step:
                every, factor = a.step.split(":")
                every, factor = int(every), float(factor)
                callbacks.append(keras.callbacks.LearningRateScheduler(
                    lambda epoch: 0.001 * factor ** (epoch // every)))
                run_name = name + "-step"
            start = time.time()
            h = model.fit(xtr, ytr, batch_size=32, epochs=a.epochs, validation_split=0.2,
                          verbose=0, callbacks=callbacks)
            seconds = time.time() - start
            test_loss, test_acc = model.evaluate(xte, yte, verbose=0)
            run = {"model": run_name, "seed": seed, "epochs": a.epochs, "seconds": seconds,
                   "keras": keras.__version__, "tensorflow": tf.__version__,
                   "history": {k: [float(v) for v in vs] for k, vs in h.history.items()},
                   "test_loss": float(test_loss), "test_accuracy": float(test_acc)}
            with open(os.path.join(a.out, f"{run_name}-seed-{seed}.json"), "w") as f:
                json.dump(run, f, indent=1)
            hh = run["history"]
            print(f"{run_name} seed {seed}: train acc {hh['accuracy'][-1]:.4f} loss "
                  f"{hh['loss'][-1]:.4f}, val acc {hh['val_accuracy'][-1]:.4f} loss "
                  f"{hh['val_loss'][-1]:.4f}, test acc {test_acc:.4f} loss {test_loss:.4f} "
                  f"({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
