#!/usr/bin/env python3
"""results/keras/keras.md from the runs scripts/keras_study.py wrote (results/keras/*.json),
beside cnnc's runs of the same networks and seeds (results/MODEL[-seed-S]/) and the study's
published figures. scripts/results.sh puts it into RESULTS.md.

usage: keras_results.py [RESULTS_DIR]
"""
import csv
import glob
import json
import os
import re
import statistics
import sys

# The study's published figures (train and validation accuracy after 15 epochs; test where
# the study gives them), as in scripts/results.sh.
STUDY = {"baseline": (0.9564, 0.9146, 0.9178), "dropout": (0.9461, 0.9140, None),
         "l1": (0.9175, 0.9076, None), "l2": (0.9460, 0.9126, None),
         "batchnorm": (0.9864, 0.9216, 0.9079), "baseline-step": (None, None, None)}
MODELS = ["baseline", "dropout", "l1", "l2", "batchnorm", "baseline-step"]


def cnnc_run(out, model, seed):
    d = os.path.join(out, model if seed == 42 else f"{model}-seed-{seed}")
    try:
        with open(os.path.join(d, "epochs.csv")) as f:
            last = list(csv.DictReader(f))[-1]
        test = json.load(open(os.path.join(d, "run.json")))["test"]
    except (OSError, KeyError, IndexError, ValueError):
        return None
    return (float(last["accuracy"]), float(last["val_accuracy"]), test["accuracy"],
            float(last["loss"]), float(last["val_loss"]), test["loss"])


def f(v):
    return "-" if v is None else f"{v:.4f}"


def spread(vs):
    if len(vs) < 2:
        return f(vs[0]) if vs else "-"
    return f"{statistics.mean(vs):.4f} ± {statistics.stdev(vs):.4f} ({min(vs):.4f}-{max(vs):.4f})"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "results"
    runs = {}
    for p in sorted(glob.glob(os.path.join(out, "keras", "*.json"))):
        r = json.load(open(p))
        h = r["history"]
        runs.setdefault(r["model"], {})[r["seed"]] = (
            h["accuracy"][-1], h["val_accuracy"][-1], r["test_accuracy"], h["loss"][-1],
            h["val_loss"][-1], r["test_loss"], r)
    if not runs:
        sys.exit(f"no runs in {out}/keras")
    meta = next(iter(next(iter(runs.values())).values()))[6]
    lines = [f"Keras {meta['keras']} on TensorFlow {meta['tensorflow']} (CPU, PyPI), "
             f"`scripts/keras_study.py`: Adam 0.001, batch 32, {meta['epochs']} epochs, "
             "validation_split 0.2, inputs scaled to [0, 1]; Keras' own initializers and "
             "data order for each seed. cnnc's runs are `make reproduce`'s (the same "
             "settings; its seeds draw other numbers than Keras' do).", "",
             "| model | seed | train acc | val acc | test acc | train loss | val loss | test loss |",
             "|---|---|---|---|---|---|---|---|"]
    for m in MODELS:
        for seed in sorted(runs.get(m, {})):
            k = runs[m][seed]
            lines.append(f"| {m} (Keras) | {seed} | " + " | ".join(f(v) for v in k[:6]) + " |")
            c = cnnc_run(out, m, seed)
            if c:
                lines.append(f"| {m} (cnnc) | {seed} | " + " | ".join(f(v) for v in c) + " |")
        if m in runs and any(v is not None for v in STUDY[m]):  # the study published it
            s = STUDY[m]
            lines.append(f"| {m} (study) | 42 | {f(s[0])} | {f(s[1])} | {f(s[2])} | - | - | - |")
    multi = [m for m in MODELS if len(runs.get(m, {})) > 1]
    if multi:
        lines += ["", "Over seeds (mean ± standard deviation (min-max)):", "",
                  "| model | runs | val acc (Keras) | test acc (Keras) | val acc (cnnc) | test acc (cnnc) | study val / test |",
                  "|---|---|---|---|---|---|---|"]
        for m in multi:
            seeds = sorted(runs[m])
            kv = [runs[m][s][1] for s in seeds]
            kt = [runs[m][s][2] for s in seeds]
            cs = [cnnc_run(out, m, s) for s in seeds]
            cv = [c[1] for c in cs if c]
            ct = [c[2] for c in cs if c]
            s = STUDY[m]
            lines.append(f"| {m} | {len(seeds)} (seeds {', '.join(map(str, seeds))}) | {spread(kv)} | "
                         f"{spread(kt)} | {spread(cv)} | {spread(ct)} | {f(s[1])} / {f(s[2])} |")
    missing = [m for m in MODELS if m not in runs]
    if missing:
        lines += ["", "Not run yet: " + ", ".join(missing) + "."]
    path = os.path.join(out, "keras", "keras.md")
    open(path, "w").write("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
