"""Runs an ONNX file with onnxruntime on the inputs of a JSON file and prints the outputs as JSON.

Usage: run_ort.py MODEL.onnx INPUTS.json
INPUTS.json: {"NAME": {"type": "float" | "string", "values": [...]}, ...}, one entry per graph
input, each a column of N values (null = NaN for floats). Output: {"OUTPUT": nested lists}.
"""

import json
import math
import sys

import numpy as np
import onnxruntime as ort


def load_inputs(path):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    feeds = {}
    for name, column in spec.items():
        if column["type"] == "string":
            feeds[name] = np.array(column["values"], dtype=object).reshape(-1, 1)
        else:
            values = [math.nan if v is None else v for v in column["values"]]
            feeds[name] = np.array(values, dtype=np.float32).reshape(-1, 1)
    return feeds


def session(path, threads=1):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def to_json(value):
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [to_json(v) for v in value.tolist()]
        return value.astype(np.float64).tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def main():
    model_path, inputs_path = sys.argv[1], sys.argv[2]
    sess = session(model_path)
    feeds = load_inputs(inputs_path)
    names = [o.name for o in sess.get_outputs()]
    outputs = sess.run(names, feeds)
    json.dump({n: to_json(o) for n, o in zip(names, outputs)}, sys.stdout)


if __name__ == "__main__":
    main()
