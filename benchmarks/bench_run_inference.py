"""The audit's prediction stage vs Beam's RunInference, side by side on the same composites.

Usage: python benchmarks/bench_run_inference.py [--n 96] [--repeats 3] [--model SPEC]

Both pipelines run on Beam's local runner, render the same planned composites (the demo config's
``vertical_gap`` 583x3000 layout, on a synthetic face set) and run the same ``ModelHandler``
(:func:`cropaudit.model.model_handler`, batch = ``model.batch_size``), ending in each composite's
salient point:
- ``dofn``: ``RenderComposites`` (render + pre-process) then ``PredictSaliency`` (the audit's
  DoFn: prediction on a background thread while the next batch renders);
- ``run_inference``: a DoFn renders each canvas, then ``RunInference(KeyedModelHandler(handler))``
  (pre-process and predict in line, in the handler's ``run_inference``).
One untimed warm-up run each, then ``--repeats`` timed runs of each, alternating; prints the
median composites/s of each and their ratio, and checks both found the same salient points.
Default model: FastGaze from ../shared, else ``baseline``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import DEFAULT_VXM, face_set, layout_section, make_config  # noqa: E402


def planned(cfg) -> list:
    from cropaudit.transforms.design import design_cells, index_groups, sample_composites
    from cropaudit.transforms.manifests import load_manifest

    attributes = list(cfg.groups.attributes)
    faces, _ = load_manifest(cfg.manifest.path, attributes)
    index = index_groups(faces, attributes)
    return [
        c
        for cell in design_cells(list(index), cfg.design)
        for i in range(cell.samples)
        for c in sample_composites(cell, i, index, cfg.design.seed, cfg.design.order)
    ]


def run(kind: str, composites: list, cfg, handler, out: Path) -> float:
    """One pipeline of ``kind``; writes its points as JSON to ``out``; returns wall seconds."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from apache_beam.options.pipeline_options import PipelineOptions

    from cropaudit.pipelines.runners import make_runner
    from cropaudit.transforms.infer import PredictSaliency
    from cropaudit.transforms.render import FaceCache, RenderComposites, render_canvas

    layout = cfg.layout

    class Canvas(beam.DoFn):
        def setup(self):
            self._cache = FaceCache(layout)

        def process(self, c):
            yield c.composite_id, render_canvas(c, layout, self._cache)[0]

    def keep(pairs):
        out.write_text(json.dumps(sorted([k, list(point[:2])] for k, point in pairs)))

    p = beam.Pipeline(runner=make_runner("direct", PipelineOptions()))
    created = p | beam.Create(composites)
    if kind == "dofn":
        rendered = created | RenderComposites(handler, layout)
        predicted = rendered.rendered | PredictSaliency(handler, cfg.model.batch_size)
        keyed = predicted.predicted | beam.MapTuple(
            lambda r, g: (r.composite.composite_id, g.salient_point())
        )
    else:
        keyed = (
            created
            | beam.ParDo(Canvas())
            | RunInference(KeyedModelHandler(handler))
            | beam.MapTuple(lambda key, result: (key, result.inference.salient_point()))
        )
    _ = keyed | beam.combiners.ToList() | beam.Map(keep)
    start = time.perf_counter()
    p.run().wait_until_finish()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96, help="composites (a multiple of 12)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="model spec (default fastgaze:../shared/..., baseline)")
    args = parser.parse_args()
    spec = args.model or (f"fastgaze:{DEFAULT_VXM}" if DEFAULT_VXM.exists() else "baseline")

    from cropaudit.model import model_handler

    with tempfile.TemporaryDirectory(prefix="bench-run-inference-") as tmp:
        manifest = face_set(Path(tmp), subjects_per_group=4)
        layout = layout_section("vertical_gap", 0)
        cfg = make_config(manifest, args.n, spec, layout, None)
        handler = model_handler(
            spec, options=cfg.model.preprocess_options(), batch_size=cfg.model.batch_size
        )
        composites = planned(cfg)
        n = len(composites)
        print(f"{n} composites, {spec}, batch {cfg.model.batch_size}, median of {args.repeats}")
        times: dict[str, list[float]] = {"dofn": [], "run_inference": []}
        points = {kind: Path(tmp) / f"{kind}.json" for kind in times}
        for kind in times:  # untimed warm-up: imports, model load and tracing
            run(kind, composites, cfg, handler, points[kind])
        found = {kind: json.loads(path.read_text()) for kind, path in points.items()}
        for r in range(args.repeats):
            for kind in times:
                times[kind].append(run(kind, composites, cfg, handler, points[kind]))
                print(f"  [repeat {r + 1}] {kind:<14} {times[kind][-1]:6.1f} s")
    rates = {kind: n / statistics.median(t) for kind, t in times.items()}
    for kind, rate in rates.items():
        print(f"  {kind:<14} {rate:7.2f} composites/s (median)")
    print(f"  ratio run_inference / dofn: {rates['run_inference'] / rates['dofn']:.2f}")
    same = found["dofn"] == found["run_inference"] and len(found["dofn"]) == n
    print(f"  same salient points in both: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
