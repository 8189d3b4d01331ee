"""Runs one model cnnc onnx wrote in ONNX Runtime (from PyPI, in the environment
scripts/ort_venv.sh makes): sequential, every graph optimization on, one thread; it must give
the reference's probabilities to 1e-5.
usage: PYTHON onnx_runtime_check.py MODEL.onnx INPUTS.f32 REFERENCE.f32 N H W C K"""
import sys

import numpy as np
import onnxruntime as ort

path, inputs, reference = sys.argv[1:4]
n, h, w, c, k = map(int, sys.argv[4:9])
x = np.fromfile(inputs, dtype="<f4").reshape((n, h, w, c) if h * w > 1 else (n, c))
want = np.fromfile(reference, dtype="<f4").reshape(n, k)
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
got = session.run(None, {session.get_inputs()[0].name: x})[0].reshape(n, k)
worst = float(np.abs(got - want).max())
print(f"ONNX Runtime {ort.__version__}: largest difference from the reference {worst:.3g}")
sys.exit(0 if worst <= 1e-5 else 1)
