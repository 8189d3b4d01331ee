#!/usr/bin/env python3
"""Networks built in PyTorch with the layers cnnc imports, exported by torch.onnx.export, with
their outputs on random inputs: what test_import holds cnnc import to.

usage: pytorch_models.py DIR
Writes, for each network NAME: NAME.onnx, NAME.in and NAME.out (float32, PyTorch's layouts),
and DIR/index.txt, one line per network: NAME N DIMS... EXPECT, where EXPECT is "import" or
"refuse" (a network cnnc must refuse: PyTorch's padding that TensorFlow's same padding is not).
Exit status 77 (with the reason on stderr) when PyTorch cannot be imported.
"""
import os
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # pragma: no cover - depends on the machine
    print(f"PyTorch cannot be imported ({e}): Debian's python3-torch", file=sys.stderr)
    sys.exit(77)


class ConvBnRelu(nn.Module):
    """Conv -> BatchNorm -> ReLU twice, torch.flatten, Linear -> ReLU -> Dropout -> Linear -> Softmax."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 16, 3)
        self.b2 = nn.BatchNorm2d(16)
        self.f1 = nn.Linear(16 * 4 * 4, 32)
        self.drop = nn.Dropout(0.3)
        self.f2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.relu(self.b2(self.c2(x)))
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.f1(x)))
        return F.softmax(self.f2(x), dim=1)


class LeNet(nn.Module):
    """Conv -> ReLU -> MaxPool, relu(max_pool(conv)), x.view(N, -1), Tanh, Softmax."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.c2 = nn.Conv2d(6, 16, 3)
        self.f1 = nn.Linear(16 * 2 * 2, 24)
        self.f2 = nn.Linear(24, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.relu(F.max_pool2d(self.c2(x), 2))
        x = x.view(x.size(0), -1)
        return F.softmax(self.f2(torch.tanh(self.f1(x))), dim=1)


class PadConv(nn.Module):
    """ZeroPad2d as TensorFlow's same padding of a 4x4 kernel, LeakyReLU, AvgPool, Sigmoid."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 1, 2))  # left, right, top, bottom
        self.c1 = nn.Conv2d(3, 4, 4)
        self.f1 = nn.Linear(4 * 5 * 5, 12)
        self.f2 = nn.Linear(12, 3)

    def forward(self, x):
        x = F.avg_pool2d(F.leaky_relu(self.c1(self.pad(x)), 0.1), 2)
        x = torch.flatten(x, 1)
        return F.softmax(self.f2(torch.sigmoid(self.f1(x))), dim=1)


class Mlp(nn.Module):
    """Linear -> BatchNorm1d -> ReLU on features."""

    def __init__(self):
        super().__init__()
        self.f1 = nn.Linear(20, 16)
        self.b1 = nn.BatchNorm1d(16)
        self.f2 = nn.Linear(16, 4)

    def forward(self, x):
        return F.softmax(self.f2(F.relu(self.b1(self.f1(x)))), dim=1)


class Conv1dNet(nn.Module):
    """Conv1d with padding 2 (same for a kernel of 5), MaxPool1d, Linear, Softmax."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 8, 5, padding=2)
        self.f1 = nn.Linear(8 * 8, 6)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.c1(x)), 2)
        return F.softmax(self.f1(torch.flatten(x, 1)), dim=1)


class Features(nn.Module):
    """No classifier: Conv -> BatchNorm -> ReLU -> Conv, an image out (imported with loss none)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 6, 3, padding=1)
        self.b1 = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 4, 3, stride=2)

    def forward(self, x):
        return self.c2(F.relu(self.b1(self.c1(x))))


class StridedPad(nn.Module):
    """Conv2d(padding=1, stride=2) on an 8x8 input pads a row and a column on both sides;
    TensorFlow's same pads only after: cnnc must refuse it, not approximate it."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.f1 = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return F.softmax(self.f1(torch.flatten(self.c1(x), 1)), dim=1)


class ResidualNet(nn.Module):
    """A graph: a ResNet basic block (conv -> bn -> relu -> conv -> bn, the identity shortcut
    added, relu), a depthwise-separable block (groups = channels, multiplier 2), three branches
    joined by torch.cat, global average pooling, Linear, Softmax."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.c1 = nn.Conv2d(8, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.b2 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 16, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(16, 8, 1)
        self.br1 = nn.Conv2d(8, 4, 1)
        self.br2 = nn.Conv2d(8, 6, 3, padding=1)
        self.fc = nn.Linear(8 + 4 + 6, 5)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        x = F.relu(x + y)
        x = F.relu(self.pw(self.dw(x)))
        x = torch.cat([x, F.relu(self.br1(x)), torch.tanh(self.br2(x))], dim=1)
        x = F.adaptive_avg_pool2d(x, 1)
        return F.softmax(self.fc(torch.flatten(x, 1)), dim=1)


# Export options per network: by default torch.onnx.export folds an eval-mode BatchNorm2d into
# the convolution before it (then no BatchNormalization node reaches cnnc), and PRESERVE keeps
# it; operator set 10 writes Pad's pads as an attribute, where 13 computes them in the graph.
KEEP_BN = {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False}
NETWORKS = [
    ("conv_bn_relu", ConvBnRelu, (3, 1, 12, 12), "import", KEEP_BN),
    ("conv_bn_folded", ConvBnRelu, (3, 1, 12, 12), "import", {}),
    ("lenet", LeNet, (2, 1, 16, 16), "import", {}),
    ("pad_conv", PadConv, (2, 3, 10, 10), "import", {"opset_version": 10}),
    ("mlp_bn", Mlp, (4, 20), "import", {}),
    ("conv1d", Conv1dNet, (2, 3, 16), "import", {}),
    ("features", Features, (2, 2, 9, 9), "import", KEEP_BN),
    ("strided_pad", StridedPad, (1, 1, 8, 8), "refuse", {}),
    ("residual", ResidualNet, (2, 3, 10, 10), "import", KEEP_BN),
    ("residual_folded", ResidualNet, (2, 3, 10, 10), "import", {}),
]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    lines = []
    for name, cls, shape, expect, options in NETWORKS:
        net = cls()
        # Trained-looking batchnorm statistics, not 0 and 1.
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.3, 0.3)
        net.eval()
        x = torch.rand(*shape)
        with torch.no_grad():
            y = net(x)
        path = os.path.join(out, name + ".onnx")
        kw = {"opset_version": 13, "do_constant_folding": True}
        kw.update(options)
        torch.onnx.export(net, x, path, input_names=["input"], output_names=["output"], **kw)
        x.numpy().astype("float32").tofile(os.path.join(out, name + ".in"))
        y.numpy().astype("float32").tofile(os.path.join(out, name + ".out"))
        lines.append(" ".join([name, str(len(shape))] + [str(d) for d in shape] + [expect]))
    with open(os.path.join(out, "index.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"PyTorch {torch.__version__}: {len(NETWORKS)} networks exported")


if __name__ == "__main__":
    main()
