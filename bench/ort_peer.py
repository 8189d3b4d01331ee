"""ONNX Runtime on the model cnnc onnx wrote, for bench/run.sh: batch-256 inference or batch-1
latency, medians of 5 one-second runs, the CPU provider with THREADS intra-op threads,
sequential execution, every graph optimization on. Prints `key value` lines.
usage: PYTHON ort_peer.py infer|latency THREADS MODEL.onnx"""
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

mode, threads, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
inp = session.get_inputs()[0]
shape = [256 if mode == "infer" else 1] + [int(d) for d in inp.shape[1:]]
x = np.random.default_rng(1).random(shape, dtype=np.float32)
feed = {inp.name: x}
for _ in range(20):
    session.run(None, feed)
rates = []
for _ in range(5):
    n, t0 = 0, time.perf_counter()
    while (t := time.perf_counter()) - t0 < 1.0:
        session.run(None, feed)
        n += 1
    rates.append((t - t0) / n)
per_call = statistics.median(rates)
if mode == "infer":
    print(f"images_per_second {shape[0] / per_call:.1f}")
else:
    print(f"microseconds_per_image {per_call * 1e6:.1f}")
print(f"onnxruntime_version {ort.__version__}")
