"""Composites per second of every catalogued cropper, side by side on the same composites.

Usage: python benchmarks/bench_croppers.py [--vxm PATH] [--composites N] [--repeats R]

The demo faces are drawn into ``--composites`` 583x3000 composites (the WACV-2022 3x1 layout) once;
each cropper then pre-processes and crops all of them (saliency models: batched prediction at
``--batch`` and the crop rule; box croppers: as the pipeline hands them a batch, smartcrop over
its process pool and, for comparison, in one process; thumbor through its own server, started
before the timed passes, its stored focal points dropped before each pass, so every pass
detects as a run does: once per image, the other ratios reusing it). Then the thumbor server's
start-up time: launch to a healthy ``/healthcheck``, median of ``--repeats`` fresh starts.
Figures are the median of ``--repeats`` timed repeats after one warm-up pass (which also traces
TensorFlow functions); the last column is each cropper's rate relative to FastGaze.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import cropaudit  # noqa: F401 - before TensorFlow: switches on its oneDNN kernels, as the pipeline

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_VXM = Path(__file__).resolve().parents[2] / "shared" / "data" / "fastgaze" / "fastgaze.vxm"
RATIOS = (0.56, 1.0, 1.14, 2.0)


def composites(n: int) -> list[np.ndarray]:
    from cropaudit.pipelines.demo_pipeline import embedded_config
    from cropaudit.synthetic import write_face_set
    from cropaudit.transforms.layout import compose
    from cropaudit.transforms.manifests import load_manifest
    from cropaudit.transforms.render import FaceCache

    config = embedded_config()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_face_set(tmp, seed=0, subjects_per_group=2)
        faces, _ = load_manifest(str(manifest), ["tone", "hair"])
        cache = FaceCache(config.layout)
        out = []
        for i in range(n):
            a, b = faces[i % len(faces)], faces[(7 * i + 3) % len(faces)]
            out.append(compose(cache.get(a), cache.get(b), config.layout)[0])
    return out


def run_cropper(handler, images: list[np.ndarray], batch: int) -> None:
    from cropaudit.model.cropper import BoxCropper, crop_batch
    from cropaudit.transforms.crop import grid_cropping

    if isinstance(handler, BoxCropper):
        model = handler.__dict__.setdefault("_bench_model", handler.load_model())
        storage = getattr(getattr(model, "server", None), "storage", None)
        if storage is not None:  # thumbor: detect afresh, not from the last pass's focal points
            shutil.rmtree(storage, ignore_errors=True)
        crop_batch(model, [handler.preprocess(im) for im in images], RATIOS)
        return
    model = handler.__dict__.setdefault("_bench_model", handler.load_model())
    inputs = np.stack([handler.preprocess(im) for im in images])
    scores = model.predict_fixed(inputs, batch)
    for im, x, s in zip(images, inputs, scores):
        grid = handler.to_grid(s, im.shape[:2], x.shape[:2])
        grid_cropping(grid, im.shape[1], im.shape[0], RATIOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vxm", default=str(DEFAULT_VXM))
    parser.add_argument("--composites", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--models",
        nargs="+",
        default=[
            "smartcrop",
            "opencv-spectral-residual",
            "opencv-fine-grained",
            "baseline",
            "vips-attention",
            "vips-entropy",
            "vips-centre",
            "thumbor",
        ],  # fmt: skip
    )
    args = parser.parse_args()

    from cropaudit.model.registry import load_handler

    images = composites(args.composites)
    specs = [f"fastgaze:{args.vxm}", *args.models]
    print(
        f"{len(images)} composites {images[0].shape[1]}x{images[0].shape[0]}, ratios {RATIOS}, "
        f"{os.cpu_count()} CPUs, median of {args.repeats} repeats"
    )
    print(f"{'cropper':<34} {'composites/s':>12} {'vs FastGaze':>11}")
    base = None
    handlers = [load_handler(spec) for spec in specs]
    if "smartcrop" in args.models:  # its process pool against one process, same composites
        from cropaudit.model.croppers.smartcrop import SmartcropCropper

        handlers.append(SmartcropCropper(workers=1))
    for handler in handlers:
        run_cropper(handler, images, args.batch)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run_cropper(handler, images, args.batch)
            times.append(time.perf_counter() - start)
        rate = len(images) / statistics.median(times)
        base = base or rate
        name = handler.name + (f" ({handler.workers} proc)" if hasattr(handler, "workers") else "")
        print(f"{name:<34} {rate:>12.1f} {rate / base:>10.2f}x")
        close = getattr(handler.__dict__.get("_bench_model"), "close", None)
        if close is not None:  # thumbor: stop its server before the next cropper is timed
            close()
    if "thumbor" in args.models:
        from cropaudit.model.croppers.thumbor import startup_seconds

        starts = [startup_seconds() for _ in range(args.repeats)]
        print(f"thumbor server start-up: median {statistics.median(starts):.2f} s "
              f"(of {', '.join(f'{t:.2f}' for t in starts)} s)")  # fmt: skip


if __name__ == "__main__":
    main()
