#!/usr/bin/env python3
"""A small CNN trained in PyTorch on Fashion-MNIST, in PyTorch's usual style (Conv ->
BatchNorm -> ReLU, max pooling, dropout, a softmax head), exported to ONNX: the model that
docs/interop.md imports into cnnc, evaluates, fine-tunes and exports to C.

usage: scripts/pytorch_fashion.py OUT.onnx [EPOCHS] [DATA_DIR]
Prints PyTorch's own test accuracy (inputs scaled to [0, 1], as cnnc's trainers scale them).
Needs Debian's python3-torch and python3-numpy (run it with /usr/bin/python3).
"""
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.b1 = nn.BatchNorm2d(32)
        self.c2 = nn.Conv2d(32, 64, 3)
        self.b2 = nn.BatchNorm2d(64)
        self.drop = nn.Dropout(0.25)
        self.f1 = nn.Linear(64 * 6 * 6, 64)
        self.f2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)   # 14x14x32
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)   # 6x6x64
        x = self.drop(torch.flatten(x, 1))
        return F.softmax(self.f2(F.relu(self.f1(x))), dim=1)


def main():
    out = sys.argv[1]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    data = sys.argv[3] if len(sys.argv) > 3 else "/usr/share/datasets/fashion-mnist"
    torch.manual_seed(42)
    torch.set_num_threads(1)
    load = lambda split, kind: idx(os.path.join(data, f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"))
    xtr = torch.tensor(load("train", "images"), dtype=torch.float32).unsqueeze(1) / 255.0
    ytr = torch.tensor(load("train", "labels"), dtype=torch.long)
    xte = torch.tensor(load("t10k", "images"), dtype=torch.float32).unsqueeze(1) / 255.0
    yte = torch.tensor(load("t10k", "labels"), dtype=torch.long)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 32):
            b = perm[i:i + 32]
            p = net(xtr[b])
            loss = F.nll_loss(torch.log(p + 1e-12), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    print(f"PyTorch {torch.__version__}: {epochs} epoch(s), test accuracy {acc:.4f}")
    torch.onnx.export(net, xte[:1], out, opset_version=13, input_names=["input"],
                      output_names=["probabilities"], dynamic_axes={"input": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
