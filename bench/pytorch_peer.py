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


def tf_same(size, k, stride):
    """TensorFlow's same padding along one axis: (before, after), the odd one after."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2, out


class Graph(nn.Module):
    """A .net file's layers in PyTorch's NCHW terms, chains and graphs alike (NAME = ...,
    from NAME, add, concat, gap, dwconv, same padding). The same shapes and arithmetic as
    cnnc's, for timing; flatten keeps PyTorch's channel-first order (the dense layer after it
    costs the same)."""

    def __init__(self, path):
        super().__init__()
        self.mods = nn.ModuleList()
        self.ops = []  # (function of its inputs' tensors, input indices)
        self.penalties = []
        names, shapes = {"input": -1}, {}
        for raw in open(path):
            for stmt in raw.split("#")[0].split(";"):
                w = stmt.split()
                if not w or w[0] in ("network", "train", "loss", "optimizer", "batch", "epochs",
                                     "validation", "seed", "schedule", "}", "lr=0.001"):
                    continue
                label = None
                if len(w) > 2 and w[1] == "=":
                    label, w = w[0], w[2:]
                src = len(self.ops) - 1
                if "from" in w:
                    i = w.index("from")
                    src, w = names[w[i + 1]], w[:i] + w[i + 2:]
                if w[0] == "input":
                    d = [int(v) for v in w[1].split("x")]
                    shapes[-1] = (d[2], d[0], d[1]) if len(d) == 3 else (d[0],)
                    continue
                self.add_layer(w, src, names, shapes)
                if label:
                    names[label] = len(self.ops) - 1
        self.shape_in = shapes[-1]
        self.outputs = shapes[len(self.ops) - 1][0]

    def add_layer(self, w, src, names, shapes):
        opts = dict(x.split("=") for x in w if "=" in x)
        pos = [x for x in w[1:] if "=" not in x]
        act = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(),
               "leaky_relu": nn.LeakyReLU(float(opts.get("alpha", 0.2)))}
        shape = shapes[src]
        mods = []
        kind = w[0]
        if kind in ("conv", "dwconv"):
            k = pos[1 if kind == "conv" else 0].split("x")
            kh, kw = int(k[0]), int(k[-1])
            st = opts.get("stride", "1").split("x")
            sh, sw = int(st[0]), int(st[-1])
            cin = shape[0]
            cout = int(pos[0]) if kind == "conv" else cin * int(opts.get("multiplier", 1))
            h, wd = shape[1], shape[2]
            if opts.get("pad") == "same":
                t, b, oh = tf_same(h, kh, sh)
                left, right, ow = tf_same(wd, kw, sw)
                if t == b and left == right:
                    conv = nn.Conv2d(cin, cout, (kh, kw), (sh, sw), padding=(t, left),
                                     groups=cin if kind == "dwconv" else 1,
                                     bias=opts.get("bias") != "no")
                else:
                    mods.append(nn.ZeroPad2d((left, right, t, b)))
                    conv = nn.Conv2d(cin, cout, (kh, kw), (sh, sw),
                                     groups=cin if kind == "dwconv" else 1,
                                     bias=opts.get("bias") != "no")
            else:
                oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
                conv = nn.Conv2d(cin, cout, (kh, kw), (sh, sw),
                                 groups=cin if kind == "dwconv" else 1,
                                 bias=opts.get("bias") != "no")
            mods.append(conv)
            rest = pos[2:] if kind == "conv" else pos[1:]
            if rest and rest[0] in act:
                mods.append(act[rest[0]])
            out = (cout, oh, ow)
            self.regularize(opts, conv.weight)
        elif kind == "pool":
            k = pos[0].split("x")
            kh, kw = int(k[0]), int(k[-1])
            st = opts.get("stride", pos[0]).split("x")
            sh, sw = int(st[0]), int(st[-1])
            if opts.get("pad") == "same":
                raise SystemExit("pytorch_peer.py: pools with pad=same are not built here")
            pool = nn.AvgPool2d if "avg" in pos else nn.MaxPool2d
            mods.append(pool((kh, kw), (sh, sw)))
            out = (shape[0], (shape[1] - kh) // sh + 1, (shape[2] - kw) // sw + 1)
        elif kind == "gap":
            mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            out = (shape[0],)
        elif kind == "dropout":
            mods.append(nn.Dropout(float(pos[0])))
            out = shape
        elif kind == "batchnorm":
            bn = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            mods.append(bn(shape[0], eps=1e-3, momentum=0.01))
            out = shape
        elif kind == "activation":
            mods.append(act[pos[0]])
            out = shape
        elif kind == "flatten":
            mods.append(nn.Flatten())
            out = (shape[0] * shape[1] * shape[2],) if len(shape) == 3 else shape
        elif kind == "dense":
            lin = nn.Linear(shape[0], int(pos[0]))
            mods.append(lin)
            if len(pos) > 1 and pos[1] in act:
                mods.append(act[pos[1]])
            out = (int(pos[0]),)
            self.regularize(opts, lin.weight)
        elif kind in ("add", "concat"):
            others = [names[n] for n in pos]
            self.ops.append((kind, [src] + others))
            out = shape if kind == "add" else \
                (sum(shapes[i][0] for i in [src] + others),) + tuple(shape[1:])
            shapes[len(self.ops) - 1] = out
            return
        else:
            raise SystemExit("pytorch_peer.py: no PyTorch layer for '%s'" % kind)
        seq = nn.Sequential(*mods)
        self.mods.append(seq)
        self.ops.append((len(self.mods) - 1, [src]))
        shapes[len(self.ops) - 1] = out

    def regularize(self, opts, weight):
        for kind in ("l1", "l2"):
            if kind in opts:
                self.penalties.append((kind, float(opts[kind]), weight))

    def forward(self, x):
        vals = []
        for op, ins in self.ops:
            a = [x if i < 0 else vals[i] for i in ins]
            if op == "add":
                v = a[0]
                for t in a[1:]:
                    v = v + t
            elif op == "concat":
                v = torch.cat(a, 1)
            else:
                v = self.mods[op](a[0])
            vals.append(v)
        return vals[-1]


def build(path):
    g = Graph(path)
    return g, g.penalties, g.shape_in


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
    if mode in ("fit", "memory") and model.shape_in != (1, 28, 28):
        raise SystemExit("pytorch_peer.py: %s runs on Fashion-MNIST, and %s takes %s" %
                         (mode, net, model.shape_in))
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

    model_in = model.shape_in
    x = torch.rand(batch, *model_in)
    y = torch.randint(0, model.outputs, (batch,))
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
