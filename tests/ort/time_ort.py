"""Times onnxruntime on an ONNX file, for the side-by-side with tract's figures.

Usage: time_ort.py MODEL.onnx INPUTS.json [--threads 2] [--runs 1000] [--batch 10000]
INPUTS.json as for run_ort.py (rows are cycled to fill the batch). Prints JSON:
{"ort_batch1_us": median of RUNS single-row runs, "ort_rows_per_s": rows/s at BATCH rows,
 "threads": THREADS, "ort_version": ...}.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

from run_ort import load_inputs, session

# Timed runs of the large batch, as many as tract's side takes (BATCH_RUNS in
# shared/src/serving/timing.rs): single runs on a shared two-core machine vary by a quarter.
BATCH_RUNS = 21


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=10000)
    args = parser.parse_args()

    sess = session(args.model, args.threads)
    feeds = load_inputs(args.inputs)
    n = next(iter(feeds.values())).shape[0]
    names = [o.name for o in sess.get_outputs()]

    single = [{k: v[i % n : i % n + 1] for k, v in feeds.items()} for i in range(args.runs)]
    for feed in single[:50]:
        sess.run(names, feed)
    times = []
    for feed in single:
        start = time.perf_counter()
        sess.run(names, feed)
        times.append(time.perf_counter() - start)

    reps = -(-args.batch // n)
    big = {k: np.concatenate([v] * reps)[: args.batch] for k, v in feeds.items()}
    sess.run(names, big)
    batch_times = []
    for _ in range(BATCH_RUNS):
        start = time.perf_counter()
        sess.run(names, big)
        batch_times.append(time.perf_counter() - start)

    json.dump(
        {
            "ort_batch1_us": statistics.median(times) * 1e6,
            "ort_rows_per_s": args.batch / statistics.median(batch_times),
            "threads": args.threads,
            "batch": args.batch,
            "ort_version": ort.__version__,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
