"""Checks one model cnnc onnx wrote: ONNX's own checker (full_check), then OpenCV's DNN module
runs it on the test's inputs and must give the reference's probabilities to 1e-5.
usage: /usr/bin/python3 onnx_check.py MODEL.onnx INPUTS.f32 REFERENCE.f32 N H W C K
(raw little-endian float32: inputs N x H x W x C, reference N x K). Exit 77: a module is missing."""
import sys

import numpy as np

try:
    import cv2
    import onnx
except ImportError as e:  # the test reports it as skipped, saying which
    print(f"skipped: {e.name} is not installed (apt-get install python3-onnx python3-opencv)")
    sys.exit(77)

path, inputs, reference = sys.argv[1:4]
n, h, w, c, k = map(int, sys.argv[4:9])
model = onnx.load(path)
onnx.checker.check_model(model, full_check=True)
assert model.ir_version == 7 and model.opset_import[0].version == 13, "IR 7, opset 13"
assert model.producer_name == "cnnc"
x = np.fromfile(inputs, dtype="<f4").reshape((n, h, w, c) if h * w > 1 else (n, c))
want = np.fromfile(reference, dtype="<f4").reshape(n, k)
net = cv2.dnn.readNetFromONNX(path)
net.setInput(x)
got = net.forward().reshape(n, k)
worst = float(np.abs(got - want).max())
print(f"checker: ok; OpenCV {cv2.__version__}: largest difference from the reference {worst:.3g}")
sys.exit(0 if worst <= 1e-5 else 1)
