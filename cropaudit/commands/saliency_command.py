"""``cropaudit saliency IMAGE...``: one model on a few images, like Twitter's ``candidate_crops``.

Prints the salient point, the crop for each aspect ratio and every scored grid point (text or
JSON); ``--overlay`` draws the saliency map, the point and the crops over the image. A box
cropper (``--model smartcrop``, a plugin) has no map: it prints its crop for each ratio. Images are
read and checked by the pipeline's one decoder (``transforms.images``); JPEG files then go through
the model's file-decoding path (for FastGaze: JPEG DCT reduction), as the binary did.
"""

from __future__ import annotations

import argparse
import json
import sys

from cropaudit.commands import options as o
from cropaudit.errors import UserError
from cropaudit.model.resize import RESIZE_METHODS


def handler(args: argparse.Namespace) -> int:
    """Scores every image it can; a bad image is reported (stderr, and a JSON error line with
    ``--json``) with the pipeline's dead-letter reason, the rest are still scored, and the exit
    status is 1 when any image failed."""
    from cropaudit import fileio
    from cropaudit.model import model_handler as make_handler
    from cropaudit.model.cropper import BoxCropper
    from cropaudit.model.plugin import require_allowed
    from cropaudit.model.resize import PreprocessOptions
    from cropaudit.transforms.images import ImageError

    if args.overlay and len(args.images) != 1:
        raise UserError("--overlay takes exactly one IMAGE")
    if args.overlay:
        from cropaudit.rundir.ownership import check_new_file

        check_new_file(args.overlay, args.overwrite)
    require_allowed([args.model], args.allow_plugins)
    model_handler = make_handler(args.model, options=PreprocessOptions(resize=args.resize))
    model = model_handler.load_model()
    failed = 0
    for path in args.images:
        try:
            data, image = _read(path)
            if isinstance(model_handler, BoxCropper):
                _box_crops(path, image, model_handler, model, args)
                continue
            result, scores = _score(path, data, image, model_handler, model, args.aspect_ratios)
        except ImageError as exc:
            failed += 1
            print(f"cropaudit saliency: {path}: {exc.reason}: {exc.detail}", file=sys.stderr)
            if args.json:
                print(json.dumps({"image": path, "error": exc.reason, "detail": exc.detail}))
            continue
        if args.json:
            out = {"image": path, **model_handler.describe(), **result.to_dict()}
            print(json.dumps(out))
        else:
            _print_text(path, result, sys.stdout)
        if args.overlay:
            import numpy as np

            from cropaudit.transforms.overlay import draw_overlay

            fileio.write_bytes(args.overlay, draw_overlay(image, np.asarray(scores), result))
    return 1 if failed else 0


def _box_crops(path: str, image, cropper, model, args: argparse.Namespace) -> None:
    """A box cropper's crops for one image (no salient point, no grid)."""
    from cropaudit.model.cropper import checked, crop_batch
    from cropaudit.transforms.candidate_crops import default_ratios

    if args.overlay:
        raise UserError(f"--overlay draws a saliency map; {cropper.name} is a box cropper")
    h, w = image.shape[:2]
    ratios = tuple(args.aspect_ratios) if args.aspect_ratios else default_ratios(w, h)
    (result,) = crop_batch(model, [cropper.preprocess(image)], ratios)
    problem = checked(result, w, h)
    if problem is not None:
        raise UserError(f"{cropper.name} on {path}: {problem[0]}: {problem[1]}")
    crops = [{"aspect_ratio": ar, **b.to_dict()} for ar, b in zip(result.ratios, result.boxes)]
    if args.json:
        out = {"image": path, **cropper.describe(), "width": w, "height": h}
        print(json.dumps({**out, "salient_point": None, "crops": crops}))
        return
    print(f"{path} {w}x{h}")
    for c in crops:
        print(f"crop {c['aspect_ratio']:g} {c['x']} {c['y']} {c['w']} {c['h']}")


def _read(path: str):
    """The file's bytes and the image, through the pipeline's one decoder (limits, reason codes,
    EXIF orientation, alpha, 16-bit)."""
    from cropaudit.transforms.images import decode_image, read_image_bytes

    data = read_image_bytes(path)
    return data, decode_image(data, path)


def _score(path: str, data: bytes, image, model_handler, model, aspect_ratios):
    """One decoded image through the model; JPEG files take the model's own file path (FastGaze:
    DCT-domain reduction, as the binary did) once the decoder has accepted them."""
    import numpy as np

    from cropaudit.transforms.candidate_crops import candidate_crops, is_symmetric

    if hasattr(model_handler, "preprocess_jpeg") and data[:3] == b"\xff\xd8\xff":
        hw, x = model_handler.preprocess_jpeg(data)
    else:
        hw, x = image.shape[:2], model_handler.preprocess(image)
    scores = model.predict(x[None])[0]
    if not np.isfinite(scores).all():
        raise UserError(f"model {model_handler.name} gave non-finite saliency for {path}")
    grid = model_handler.to_grid(scores, hw, x.shape[:2])
    result = candidate_crops(grid, hw[1], hw[0], aspect_ratios, is_symmetric(image))
    return result, scores


def _print_text(path: str, result, out) -> None:
    """Layout close to ``candidate_crops ... show_all_points``."""
    print(f"{path} {result.width}x{result.height}", file=out)
    print(
        f"salient_point {result.salient_x} {result.salient_y} {result.salient_score:.6f}", file=out
    )
    for crop in result.crops:
        print(f"crop {crop.aspect_ratio:g} {crop.x} {crop.y} {crop.w} {crop.h}", file=out)
    for x, y, score in result.points:
        print(f"{x} {y} {score:.6f}", file=out)


COMMAND = o.Command(
    "saliency",
    "salient point, crops and grid scores for images (candidate_crops)",
    (
        o.arg("images", metavar="IMAGE", nargs="+", help="image files (local or gs://)"),
        o.model("model spec, e.g. fastgaze:PATH, smartcrop, baseline", required=True),
        o.arg(
            "--aspect-ratios",
            type=float,
            nargs="+",
            default=None,
            help="crop ratios (height/width); default Twitter's 0.56 1.0 1.14 2.0 plus the image's",
        ),
        o.ALLOW_PLUGINS,
        o.arg("--resize", choices=RESIZE_METHODS, default="faithful"),
        o.flag("--json", "print one JSON object per image"),
        o.arg("--overlay", metavar="PNG", help="write an overlay PNG (one image only)"),
        o.overwrite("replace an existing --overlay file"),
    ),
    handler,
)
