"""``cropaudit saliency IMAGE...``: one model on a few images, like Twitter's ``candidate_crops``.

Prints the salient point and the crop for each aspect ratio, labelled (``--grid`` adds every
scored grid point; ``--json`` prints one object per image, grid included); ``--overlay`` draws
the saliency map, the point and the crops over the image. A box cropper (``--model smartcrop``,
a plugin) has no map: it prints (and ``--overlay`` draws) its crop for each ratio, and its point
when it has one. Images are
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
            crops = [(c.aspect_ratio, c.x, c.y, c.w, c.h) for c in result.crops]
            point = (result.salient_x, result.salient_y, result.salient_score)
            grid = result.points if args.grid else None
            _print_text(path, result.width, result.height, crops, point, len(result.points), grid)
        if args.overlay:
            import numpy as np

            from cropaudit.transforms.overlay import draw_overlay

            fileio.write_bytes(args.overlay, draw_overlay(image, np.asarray(scores), result))
    return 1 if failed else 0


def _box_crops(path: str, image, cropper, model, args: argparse.Namespace) -> None:
    """A box cropper's crops for one image, and its point when it has one (no grid; in JSON each
    crop's ``focus`` where the cropper reports the point it centred on)."""
    from cropaudit import fileio
    from cropaudit.model.cropper import checked, crop_batch
    from cropaudit.transforms.candidate_crops import default_ratios

    h, w = image.shape[:2]
    ratios = tuple(args.aspect_ratios) if args.aspect_ratios else default_ratios(w, h)
    (result,) = crop_batch(model, [cropper.preprocess(image)], ratios)
    problem = checked(result, w, h)
    if problem is not None:
        raise UserError(f"{cropper.name} on {path}: {problem[0]}: {problem[1]}")
    crops = [{"aspect_ratio": ar, **b.to_dict()} for ar, b in zip(result.ratios, result.boxes)]
    for crop, focus in zip(crops, result.focus or ()):
        crop["focus"] = None if focus is None else {"x": focus[0], "y": focus[1]}
    if args.json:
        out = {"image": path, **cropper.describe(), "width": w, "height": h}
        point = None if result.point is None else dict(zip(("x", "y", "score"), result.point))
        print(json.dumps({**out, "salient_point": point, "crops": crops}))
    else:
        rows = [(ar, b.x, b.y, b.w, b.h) for ar, b in zip(result.ratios, result.boxes)]
        _print_text(path, w, h, rows, result.point, None, None)
    if args.overlay:
        from cropaudit.transforms.overlay import draw_crops

        point = result.point[:2] if result.point else None
        png = draw_crops(image, list(zip(result.ratios, result.boxes)), point)
        fileio.write_bytes(args.overlay, png)


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


def _print_text(path: str, width: int, height: int, crops, point, scored, grid) -> None:
    """One image, labelled: its size, the salient point (``point``: x, y, score; None for a box
    cropper without one), each crop (aspect ratio, x, y, w, h), how many grid points were scored
    (``scored``; None: no grid) and, when asked (``grid``), every one of them."""
    lines = [f"{path} {width}x{height}"]
    if point is not None:
        x, y, score = point
        lines.append(f"  {'salient point':<22}x {x}, y {y}, score {score:.6f}")
    for ar, x, y, w, h in crops:
        lines.append(f"  {f'crop {ar:g} (h/w)':<22}x {x}, y {y}, width {w}, height {h}")
    if grid is not None:
        lines.append(f"  grid: {scored} scored points (x, y, score)")
        lines += [f"    {x} {y} {s:.6f}" for x, y, s in grid]
    elif scored is not None:
        lines.append(f"  grid: {scored} scored points (--grid lists them)")
    print("\n".join(lines))


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
        o.flag("--json", "print one JSON object per image (grid points included)"),
        o.flag("--grid", "also list every scored grid point (x, y, score)"),
        o.arg(
            "--overlay",
            metavar="PNG",
            help="write an overlay PNG (one image only): the saliency map, point and crops; a "
            "box cropper's crops (and its point, if any) over the untouched image",
        ),
        o.overwrite("replace an existing --overlay file"),
    ),
    handler,
)
