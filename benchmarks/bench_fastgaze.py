"""Throughput of the FastGaze port on 583×3000 composites: model alone vs with pre-processing.

Usage: python benchmarks/bench_fastgaze.py [--vxm PATH] [--repeats N] [--batches 1 8 32]

Both columns come from the same run; each figure is the median over ``--repeats`` timed repeats
after one warm-up call per batch size (which traces the ``tf.function`` for that shape).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

import cropaudit  # noqa: F401 - before TensorFlow: switches on its oneDNN kernels, as the pipeline

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_VXM = Path(__file__).resolve().parents[2] / "shared" / "data" / "fastgaze" / "fastgaze.vxm"
WIDTH, HEIGHT = 583, 3000


def _median_rate(fn, items: int, repeats: int) -> float:
    fn()  # warm-up: traces the tf.function for this batch shape
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return items / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vxm", default=str(DEFAULT_VXM))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()

    import tensorflow as tf

    from cropaudit.model.fastgaze.handler import FastGazeHandler
    from cropaudit.provenance import onednn_state

    handler = FastGazeHandler(args.vxm)
    model = handler.load_model()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (max(args.batches), HEIGHT, WIDTH, 3), dtype=np.uint8)
    inputs = np.stack([handler.preprocess(im) for im in images])

    print(f"FastGaze on {WIDTH}x{HEIGHT} composites, model input {inputs.shape[1:3]} (h, w)")
    print(
        f"TF {tf.__version__} (oneDNN {onednn_state()}), {os.cpu_count()} CPUs, "
        f"median of {args.repeats} repeats"
    )
    print(f"{'batch':>5}  {'model alone /s':>14}  {'with preprocess /s':>18}")
    for b in args.batches:
        bare = _median_rate(lambda b=b: model.predict(inputs[:b]), b, args.repeats)
        full = _median_rate(
            lambda b=b: model.predict(np.stack([handler.preprocess(im) for im in images[:b]])),
            b,
            args.repeats,
        )
        print(f"{b:>5}  {bare:>14.1f}  {full:>18.1f}")


if __name__ == "__main__":
    main()
