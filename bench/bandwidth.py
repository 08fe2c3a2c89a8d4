"""Memory read bandwidth as a memory-bound decoder step sees it: a float32 matrix-vector product over a matrix far
larger than the caches. Prints one JSON line. Run it with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set to the thread
count the engines use (bench_pipeline.py does).

    python bench/bandwidth.py [--mib 1024] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

COLUMNS = 1024
BYTES_PER_FLOAT = 4
MIB = 1024 * 1024
WARMUP_RUNS = 2


def measure(mib: int, repeats: int) -> dict[str, float]:
    rows = mib * MIB // (COLUMNS * BYTES_PER_FLOAT)
    matrix = np.random.default_rng(0).standard_normal((rows, COLUMNS), dtype=np.float32)
    vector = np.ones(COLUMNS, dtype=np.float32)
    times = []
    for run in range(WARMUP_RUNS + repeats):
        began = time.perf_counter()
        matrix @ vector
        if run >= WARMUP_RUNS:
            times.append(time.perf_counter() - began)
    seconds = statistics.median(times)
    return {"matrix_mib": mib, "median_s": seconds, "gb_per_s": matrix.nbytes / seconds / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(json.dumps(measure(args.mib, args.repeats)))


if __name__ == "__main__":
    main()
