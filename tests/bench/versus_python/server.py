"""The server a Python user would write for the same job as `plexe serve`'s infer: FastAPI on one
uvicorn worker (uvloop + httptools from `uvicorn[standard]`), onnxruntime on the ONNX file that
plexe trained, no authentication, no rate limit, no validation beyond onnxruntime's own.

Usage: server.py MODEL.onnx PORT. Serves POST /infer with one JSON object of input fields.
"""

import math
import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request

model_path, port = sys.argv[1], int(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
inputs = [(i.name, i.type == "tensor(string)") for i in session.get_inputs()]
outputs = [o.name for o in session.get_outputs()]
app = FastAPI()


def to_json(value):
    return value.tolist() if hasattr(value, "tolist") else value


@app.post("/infer")
async def infer(request: Request):
    row = await request.json()
    feeds = {}
    for name, is_text in inputs:
        value = row.get(name)
        if is_text:
            feeds[name] = np.array([["" if value is None else str(value)]], dtype=object)
        else:
            number = math.nan if value is None else float(value)
            feeds[name] = np.array([[number]], dtype=np.float32)
    result = session.run(outputs, feeds)
    return {name: to_json(value) for name, value in zip(outputs, result)}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
