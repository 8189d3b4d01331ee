#!/usr/bin/env python3
"""Keras weight files for test_keras, written and read with h5py, nobody's code but HDF5's.

usage:
  keras_h5.py write TENSORS DIR   files of every layout, values from value(t, i)
  keras_h5.py check TENSORS FILE  FILE (written by cnnc) has the layout Keras reads and
                                   the values value(t, i); prints what it checked

TENSORS: one line per tensor of the network, in its order: NAME DIM... ("conv2d_1/kernel 3 3 1
32"). The value of element i (in C order) of tensor t (from 0) is sin(0.37 t + 0.011 i); C
computes the same formula in double and rounds to float.
"""
import math
import sys

import h5py
import numpy as np


def value(t, n):
    i = np.arange(n, dtype=np.float64)
    return np.sin(0.37 * t + 0.011 * i).astype(np.float32)


def close(a, b):
    """Within a float's last bit near 1: libm's sin and numpy's may round differently."""
    return a.shape == b.shape and float(np.max(np.abs(a - b), initial=0)) <= 1.2e-7


def read_tensors(path):
    out = []
    for line in open(path):
        parts = line.split()
        if parts:
            out.append((parts[0], tuple(int(d) for d in parts[1:])))
    return out


def layers_of(tensors):
    """[(layer, [(t, kind, shape), ...])] in order."""
    out = []
    for t, (name, shape) in enumerate(tensors):
        layer, kind = name.split("/")
        if not out or out[-1][0] != layer:
            out.append((layer, []))
        out[-1][1].append((t, kind, shape))
    return out


def keras3_name(layer):
    kind, _, index = layer.rpartition("_")
    return kind if int(index) == 1 else f"{kind}_{int(index) - 1}"


def write(tensors, out):
    layers = layers_of(tensors)
    # Keras 2, fixed-length strings as model.save_weights wrote them (numpy 'S' arrays), with
    # a layer without weights among them as Keras lists every layer.
    names = [l for l, _ in layers]
    for variant in ("fixed", "vlen"):
        with h5py.File(f"{out}/keras2-{variant}.h5", "w") as f:
            listed = names[:1] + ["flatten_9"] + names[1:]
            if variant == "fixed":
                f.attrs["layer_names"] = np.array([n.encode() for n in listed])
                f.attrs["backend"] = b"tensorflow"
                f.attrs["keras_version"] = b"2.13.1"
            else:  # Keras 3's legacy writer: variable-length strings, names without ':0'
                f.attrs["layer_names"] = np.array(listed, dtype=h5py.string_dtype())
                f.attrs["backend"] = "tensorflow"
                f.attrs["keras_version"] = "3.15.1"
            f.create_group("flatten_9").attrs["weight_names"] = np.array([], dtype="S1")
            for layer, ws in layers:
                g = f.create_group(layer)
                wn = [f"{layer}/{kind}:0" if variant == "fixed" else f"sequential/{layer}/{kind}"
                      for _, kind, _ in ws]
                if variant == "fixed":
                    g.attrs["weight_names"] = np.array([w.encode() for w in wn])
                else:
                    g.attrs["weight_names"] = np.array(wn, dtype=h5py.string_dtype())
                for (t, kind, shape), w in zip(ws, wn):
                    g.create_dataset(w, data=value(t, math.prod(shape)).reshape(shape))
    # Keras 3: layers/NAME/vars/I, every layer (weightless ones with empty vars).
    with h5py.File(f"{out}/keras3.weights.h5", "w") as f:
        f.create_group("vars").attrs["name"] = "sequential"
        f.create_group("layers/flatten/vars").attrs["name"] = "flatten"
        for layer, ws in layers:
            name = keras3_name(layer)
            g = f.create_group(f"layers/{name}/vars")
            g.attrs["name"] = name
            for k, (t, kind, shape) in enumerate(ws):
                g.create_dataset(str(k), data=value(t, math.prod(shape)).reshape(shape))
    print(f"wrote 3 files for {len(layers)} layers with weights")


def check(tensors, path):
    layers = layers_of(tensors)
    with h5py.File(path, "r") as f:
        if path.endswith(".weights.h5"):
            for layer, ws in layers:
                g = f[f"layers/{keras3_name(layer)}/vars"]
                assert len(g) == len(ws), (layer, list(g))
                for k, (t, kind, shape) in enumerate(ws):
                    d = g[str(k)]
                    assert d.shape == shape and d.dtype == np.float32, (layer, k, d.shape)
                    assert close(d[()].ravel(), value(t, math.prod(shape))), (layer, k)
        else:
            names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
            assert names == [l for l, _ in layers], names
            for key in ("backend", "keras_version"):
                assert key in f.attrs, key
            for layer, ws in layers:
                g = f[layer]
                wn = [n.decode() for n in g.attrs["weight_names"]]
                assert wn == [f"{layer}/{kind}:0" for _, kind, _ in ws], wn
                for (t, kind, shape), w in zip(ws, wn):
                    d = g[w]
                    assert d.shape == shape and d.dtype == np.float32, (w, d.shape)
                    assert close(d[()].ravel(), value(t, math.prod(shape))), w
    print(f"{path}: the layout Keras reads, {len(layers)} layers, every value")


if __name__ == "__main__":
    mode, tensors = sys.argv[1], read_tensors(sys.argv[2])
    write(tensors, sys.argv[3]) if mode == "write" else check(tensors, sys.argv[3])
