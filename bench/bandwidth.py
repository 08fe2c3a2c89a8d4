"""Memory read bandwidth as a memory-bound decoder step sees it: a float32 matrix-vector product over a matrix far
larger than the caches, by NumPy's BLAS and by ONNX Runtime's MatMul (weights not pre-packed, as in the decoder
graph); the faster of the two is the machine's figure. Prints one JSON line. Run it with OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS set to the thread count the engines use (bench_pipeline.py does).

    python bench/bandwidth.py [--mib 1024] [--repeats 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np

COLUMNS = 1024
BYTES_PER_FLOAT = 4
MIB = 1024 * 1024
WARMUP_RUNS = 2
OPSET = 17


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for run in range(WARMUP_RUNS + repeats):
        began = time.perf_counter()
        work()
        if run >= WARMUP_RUNS:
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def _ort_matvec(matrix: np.ndarray, threads: int) -> Callable[[], object]:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ascontiguousarray(matrix.T), "weight")  # [COLUMNS, rows]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["y"])], "matvec",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, COLUMNS])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.disable_prepacking", "1")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = np.ones((1, COLUMNS), dtype=np.float32)
    return lambda: session.run(None, {"x": x})


def measure(mib: int, repeats: int, threads: int) -> dict[str, float]:
    rows = mib * MIB // (COLUMNS * BYTES_PER_FLOAT)
    matrix = np.random.default_rng(0).standard_normal((rows, COLUMNS), dtype=np.float32)
    vector = np.ones(COLUMNS, dtype=np.float32)
    numpy_s = _median_seconds(lambda: matrix @ vector, repeats)
    ort_s = _median_seconds(_ort_matvec(matrix, threads), repeats)
    figures = {"numpy_gb_per_s": matrix.nbytes / numpy_s / 1e9, "onnxruntime_gb_per_s": matrix.nbytes / ort_s / 1e9}
    return {"matrix_mib": mib, **figures, "gb_per_s": max(figures.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.mib, args.repeats, args.threads)))


if __name__ == "__main__":
    main()
