#!/usr/bin/python3
"""The peer of bench/run.sh: PyTorch on CPU running the same network as cnnc, with the same
batch size, optimizer (Adam, Keras' epsilon) and thread count, timed the same way.
usage: pytorch_peer.py train|infer|latency|memory|fit THREADS NET.net [DATA_DIR]
`fit` trains on Fashion-MNIST as cnnc's trainers do (Keras' initialization and settings,
15 epochs, the last 20% held out) and prints the figures per epoch: a cross-check of results.
Prints `key value` lines. Needs Debian's python3-torch (run with /usr/bin/python3)."""
import gzip
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def build(path):
    """The layers of a .net file (the subset models/ uses), in PyTorch's NCHW terms."""
    layers, shape, penalties = [], None, []
    for raw in open(path):
        for stmt in raw.split("#")[0].split(";"):
            w = stmt.split()
            if not w or w[0] in ("network", "train", "loss", "optimizer", "batch", "epochs",
                                 "validation", "seed", "schedule", "}"):
                continue
            opts = dict(x.split("=") for x in w if "=" in x)
            pos = [x for x in w[1:] if "=" not in x]
            act = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}
            if w[0] == "input":
                h, wd, c = (int(v) for v in pos[0].split("x"))
                shape = (c, h, wd)
            elif w[0] == "conv":
                k = int(pos[1].split("x")[0])
                conv = nn.Conv2d(shape[0], int(pos[0]), k)
                layers.append(conv)
                shape = (int(pos[0]), shape[1] - k + 1, shape[2] - k + 1)
                if len(pos) > 2 and pos[2] in act:
                    layers.append(act[pos[2]])
            elif w[0] == "pool":
                s = int(pos[0])
                layers.append(nn.MaxPool2d(s))
                shape = (shape[0], shape[1] // s, shape[2] // s)
            elif w[0] == "dropout":
                layers.append(nn.Dropout(float(pos[0])))
            elif w[0] == "batchnorm":
                layers.append(nn.BatchNorm2d(shape[0], eps=1e-3, momentum=0.01))
            elif w[0] == "flatten":
                layers.append(nn.Flatten())
                shape = (shape[0] * shape[1] * shape[2],)
            elif w[0] == "dense":
                lin = nn.Linear(shape[0], int(pos[0]))
                layers.append(lin)
                shape = (int(pos[0]),)
                if len(pos) > 1 and pos[1] in act:
                    layers.append(act[pos[1]])
                for kind in ("l1", "l2"):
                    if kind in opts:
                        penalties.append((kind, float(opts[kind]), lin.weight))
    return nn.Sequential(*layers), penalties, shape


def load(data, split):
    with gzip.open(os.path.join(data, split + "-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(data, split + "-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def evaluate(model, x, y):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for s in range(0, len(x), 256):
            xb = torch.from_numpy(x[s:s + 256].astype(np.float32) / 255.0)
            yb = torch.from_numpy(y[s:s + 256])
            out = model(xb)
            loss += nn.functional.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    return loss / len(x), correct / len(x)


def fit(model, penalties, step, data, epochs):
    # Keras' initialization: glorot-uniform kernels, zero biases.
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    x, y = load(data, "train")
    xt, yt = load(data, "t10k")
    n_train = int(len(x) * 0.8)  # Keras' validation_split=0.2: the last fifth
    xv, yv, x, y = x[n_train:], y[n_train:], x[:n_train], y[:n_train]
    rng = np.random.default_rng(42)
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(n_train)
        correct, t0 = 0, time.time()
        for s in range(0, n_train, 32):
            idx = order[s:s + 32]
            xb = torch.from_numpy(x[idx].astype(np.float32) / 255.0)
            yb = torch.from_numpy(y[idx])
            step(xb, yb)
        _, acc = evaluate(model, x, y)
        vl, va = evaluate(model, xv, yv)
        print("epoch %d train_acc %.4f val_loss %.4f val_acc %.4f %.1fs" %
              (epoch, acc, vl, va, time.time() - t0), flush=True)
    tl, ta = evaluate(model, xt, yt)
    print("test_loss %.4f\ntest_accuracy %.4f" % (tl, ta))


def main():
    mode, threads, net = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = sys.argv[4] if len(sys.argv) > 4 else "/usr/share/datasets/fashion-mnist"
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # as cnnc's trainers run
    torch.manual_seed(1)
    model, penalties, _ = build(net)
    opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)
    lossf = nn.CrossEntropyLoss()
    batch = {"train": 32, "infer": 256, "latency": 1, "memory": 32, "fit": 32}[mode]

    def step(x, y):
        opt.zero_grad()
        loss = lossf(model(x), y)
        for kind, k, w in penalties:
            loss = loss + k * (w.abs().sum() if kind == "l1" else (w * w).sum())
        loss.backward()
        opt.step()

    if mode == "fit":
        return fit(model, penalties, step, data, int(os.environ.get("EPOCHS", "15")))
    if mode == "memory":  # a training run over the real data, kept as bytes, as cnnc does
        with gzip.open(os.path.join(data, "train-images-idx3-ubyte.gz")) as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        with gzip.open(os.path.join(data, "train-labels-idx1-ubyte.gz")) as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
        model.train()
        for start in range(0, 9600, batch):
            x = torch.from_numpy(images[start:start + batch].astype(np.float32) / 255.0)
            step(x, torch.from_numpy(labels[start:start + batch]))
        print("peak_rss_mb %.1f" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
        return

    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    rates = []
    for rep in range(-1, 5):  # rep -1 warms up
        images, t0 = 0, time.perf_counter()
        while True:
            if mode == "train":
                model.train()
                step(x, y)
            else:
                model.eval()
                with torch.no_grad():
                    model(x)
            images += batch
            t = time.perf_counter()
            if t - t0 >= (0.25 if rep < 0 else 1.0):
                break
        if rep >= 0:
            rates.append(images / (t - t0))
    r = statistics.median(rates)
    print("mode %s\nthreads %d\nbatch %d\nimages_per_second %.1f" % (mode, threads, batch, r))
    if mode == "latency":
        print("microseconds_per_image %.1f" % (1e6 / r))


if __name__ == "__main__":
    main()
