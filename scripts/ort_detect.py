#!/usr/bin/env python3
"""Peer for `sentrix detect` / `sentrix bench detect`: the same YOLOX preprocessing and
decoding with onnxruntime (one thread), for cross-checking boxes and timing side by side.

    scripts/ort_detect.py MODEL SIZE IMAGE [RUNS] [--ops]
Prints the detections (label score x1 y1 x2 y2), then `ort_median_ms=…`; with --ops,
also `ort_op=KIND MS NODES` per operator kind from onnxruntime's profiler (mean
milliseconds per run), for `sentrix bench detect --ops`.
"""
import collections
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

ops = "--ops" in sys.argv
args = [a for a in sys.argv[1:] if a != "--ops"]
model, side, image = args[0], int(args[1]), args[2]
runs = int(args[3]) if len(args) > 3 else 1
labels = [l.strip() for l in open(model.rsplit("/", 1)[0] + "/coco_classes.txt") if l.strip()]

img = Image.open(image).convert("RGB")
r = min(side / img.width, side / img.height)
w, h = round(img.width * r), round(img.height * r)
scaled = np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.float32)
x = np.full((side, side, 3), 114.0, dtype=np.float32)
x[:h, :w] = scaled[:, :, ::-1]  # BGR, top-left
x = x.transpose(2, 0, 1)[None]

opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1


def dynamic_copy(path):
    """The model with its input height and width (and the output's box count) made
    symbolic, for a static export (YOLOX-nano's is 416) measured at another size."""
    import onnx

    m = onnx.load(path)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "boxes"
    del m.graph.value_info[:]
    return m.SerializeToString()


sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
static = sess.get_inputs()[0].shape[2:]
source = model
if static != [side, side] and all(isinstance(d, int) for d in static):
    source = dynamic_copy(model)
    sess = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
sess.run(None, {name: x})  # warm-up, as sentrix's side has
times = []
for _ in range(runs):
    t = time.perf_counter()
    out = sess.run(None, {name: x})[0][0]
    times.append((time.perf_counter() - t) * 1000)

grids = []
for s in (8, 16, 32):
    for gy in range(side // s):
        for gx in range(side // s):
            grids.append((gx, gy, s))
dets = []
for (gx, gy, s), row in zip(grids, out):
    c = int(np.argmax(row[5:]))
    score = float(row[4] * row[5 + c])
    if score < 0.3:
        continue
    cx, cy = (row[0] + gx) * s, (row[1] + gy) * s
    bw, bh = np.exp(row[2]) * s, np.exp(row[3]) * s
    dets.append((score, c, (cx - bw / 2) / r, (cy - bh / 2) / r, (cx + bw / 2) / r, (cy + bh / 2) / r))
dets.sort(reverse=True)
kept = []
for d in dets:
    def iou(a, b):
        ix = max(0.0, min(a[4], b[4]) - max(a[2], b[2]))
        iy = max(0.0, min(a[5], b[5]) - max(a[3], b[3]))
        inter = ix * iy
        area = lambda q: (q[4] - q[2]) * (q[5] - q[3])
        return inter / (area(a) + area(b) - inter)
    if all(k[1] != d[1] or iou(k, d) <= 0.45 for k in kept):
        kept.append(d)
for score, c, x1, y1, x2, y2 in kept:
    print(f"{labels[c]:<14} {score:.2f}  [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]")
print(f"ort_median_ms={sorted(times)[len(times) // 2]:.1f}")


def print_op_kinds(trace_path):
    """onnxruntime's per-node kernel times, summed per operator kind, per timed run
    (the warm-up run, the first `model_run`, left out)."""
    ms, nodes = collections.Counter(), collections.defaultdict(set)
    with open(trace_path) as f:
        events = json.load(f)
    os.remove(trace_path)
    warm_up_end_us = min(e["ts"] + e["dur"] for e in events if e.get("name") == "model_run")
    for e in events:
        if e.get("cat") == "Node" and e["ts"] >= warm_up_end_us and e.get("name", "").endswith("_kernel_time"):
            kind = e["args"]["op_name"]
            ms[kind] += e["dur"] / 1000 / runs
            nodes[kind].add(e["name"])
    for kind, total in ms.most_common():
        print(f"ort_op={kind} {total:.3f} {len(nodes[kind])}")


if ops:
    # Profiled in a session of its own, so the timed runs above paid nothing for it.
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(tempfile.gettempdir(), "sentrix-ort-profile")
    profiled = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        profiled.run(None, {name: x})
    print_op_kinds(profiled.end_profiling())
