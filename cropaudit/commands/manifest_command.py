"""``cropaudit manifest``: build a manifest from a standard dataset, or check one before a run."""

from __future__ import annotations

import argparse
from collections import Counter

from cropaudit.commands import options as o

KINDS = ("cfd", "fairface", "utkface", "wikidata")
_EXAMPLES = 3  # skipped items / dead letters shown per reason


def run_import(args: argparse.Namespace) -> int:
    from cropaudit import importers
    from cropaudit.rundir.ownership import check_new_file

    check_new_file(args.out, args.overwrite)
    if args.kind == "cfd":
        result = importers.import_cfd(args.src)
    elif args.kind == "utkface":
        result = importers.import_utkface(args.src)
    elif args.kind == "fairface":
        result = importers.import_fairface(args.src, args.image_root)
    else:
        result = importers.import_wikidata(
            args.src,
            args.image_root,
            args.mapping,
            keep_unmapped=args.keep_unmapped,
            include_missing_files=args.include_missing_files,
        )
    importers.write_manifest(result.rows, args.out)
    print(f"wrote {len(result.rows)} rows to {args.out}")
    _print_reasons("skipped", [(reason, item) for item, reason in result.skipped])
    return 0


def run_check(args: argparse.Namespace) -> int:
    from cropaudit import config as config_mod
    from cropaudit.errors import UserError
    from cropaudit.transforms.manifests import load_manifest

    config = config_mod.load(args.config) if args.config else config_mod.ExperimentConfig()
    if args.attributes:
        attributes = tuple(a.strip() for a in args.attributes.split(",") if a.strip())
    elif args.config:
        attributes = config.groups.attributes
    else:
        raise UserError("manifest check needs --attributes or --config")
    rules = config.groups
    faces, dead = load_manifest(
        args.manifest,
        attributes,
        image_root=args.image_root or config.manifest.image_root or None,
        allowed_labels={k: set(v) for k, v in rules.labels.items()} or None,
        format=args.format or config.manifest.format,
        groups=rules,
    )
    subjects = len({f.subject_id for f in faces})
    print(f"{len(faces)} faces of {subjects} subjects; {len(dead)} rows dead-lettered")
    missing = ", ".join(repr(m) for m in rules.missing_labels) or "none"
    print(
        f"labels: case {rules.label_case}, whitespace {rules.label_whitespace}, "
        f"missing-value spellings {missing} (from {args.config or 'the defaults'})"
    )
    groups = Counter(f.group(attributes) for f in faces)
    print(f"faces per group ({'/'.join(attributes)}):")
    for group, count in sorted(groups.items()):
        print(f"  {group}: {count}")
    _print_reasons("dead letters", [(d.reason, d.detail) for d in dead])
    return 1 if args.strict and dead else 0


def run_detect(args: argparse.Namespace) -> int:
    from cropaudit import fileio
    from cropaudit.csvcells import csv_text
    from cropaudit.facedetect import face_detector, fill_row, miss_rate_differences, miss_rates
    from cropaudit.importers import write_manifest
    from cropaudit.rundir.ownership import check_new_file
    from cropaudit.transforms.images import load_image
    from cropaudit.transforms.manifests import _resolve, check_columns, read_manifest

    attributes = tuple(a.strip() for a in args.attributes.split(",") if a.strip())
    target = args.dead_letter or f"{args.out}.dead_letter.csv"
    for path in (args.out, target):
        check_new_file(path, args.overwrite)
    table = read_manifest(args.manifest)
    check_columns(table.columns, attributes, args.manifest)  # as `manifest check`: no "?/?" group
    base = args.image_root or fileio.dirname(args.manifest)
    detector = face_detector(args.detector)
    rows, dead = [], []
    for row in table.rows:
        filled, detail = fill_row(
            row, detector, lambda r: load_image(_resolve(r.get("image_uri") or "", base))
        )
        rows.append(filled)
        if detail is not None:
            dead.append((filled["face_detection"], row.get("image_uri") or "", detail))
    write_manifest(rows, args.out)
    dead_rows = [("reason", "image_uri", "detail"), *dead]
    fileio.write_atomic(target, csv_text(dead_rows).encode("utf-8"))
    print(f"wrote {len(rows)} rows to {args.out}; {len(dead)} dead letters to {target}")
    print(f"detector: {detector.name}")
    _print_reasons("dead letters", [(reason, uri) for reason, uri, _ in dead])
    rates = miss_rates(rows, attributes)
    if len(rates):
        print("miss rate per group (no face or several faces; 95% interval, people as clusters):")
        for r in rates.itertuples():
            print(
                f"  {r.group}: {r.miss_rate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] "
                f"({r.images - r.detected} of {r.images} images of {r.subjects} people)"
            )
        differences = miss_rate_differences(rows, attributes)
        if len(differences):
            print("difference in miss rate between groups:")
            for text in differences["text"]:
                print(f"  {text}")
    return 0


def _print_reasons(title: str, items: list[tuple[str, str]]) -> None:
    """Counts by reason, with the first few examples of each, so nothing is skipped unseen."""
    if not items:
        return
    counts = Counter(reason for reason, _ in items)
    print(f"{title}: {sum(counts.values())}")
    for reason, count in sorted(counts.items()):
        examples = [example for r, example in items if r == reason][:_EXAMPLES]
        more = ", …" if count > len(examples) else ""
        print(f"  {reason}: {count} (e.g. {', '.join(examples)}{more})")


_OUT = o.out("manifest to write (.parquet .csv .tsv .jsonl)", required=True)

COMMAND = o.Command(
    "manifest",
    "import or check a demographic face manifest",
    dest="manifest_command",
    actions=(
        o.Command(
            "import",
            "build a manifest from a standard dataset",
            (
                o.arg("kind", choices=KINDS, help="dataset kind"),
                o.arg(
                    "src",
                    help="image folder (cfd, utkface) or label file (fairface, wikidata)",
                ),
                _OUT,
                o.overwrite("replace an existing --out file"),
                o.image_root("folder the label file's image paths are relative to"),
                o.arg("--mapping", help="WikiData Q-id -> label TOML (default: the shipped one)"),
                o.flag("--keep-unmapped", "keep unmapped Q-ids, labelled 'unmapped'"),
                o.flag("--include-missing-files", "keep WikiData rows whose file_exists is False"),
            ),
            run_import,
        ),
        o.Command(
            "check",
            "load a manifest; print group counts, dead letters",
            (
                o.manifest_path(),
                o.arg("--attributes", help="comma-separated, e.g. race,gender"),
                o.arg(
                    "--config",
                    help="experiment config whose [groups] (attributes, allowed labels, label "
                    "normalisation) and [manifest] format/image_root the check uses",
                ),
                o.arg("--format", help="manifest format (default: the config's, else auto)"),
                o.image_root(),
                o.flag("--strict", "exit 1 if any row is dead-lettered"),
            ),
            run_check,
        ),
        o.Command(
            "detect-faces",
            "fill missing face boxes with OpenCV's YuNet or Haar face detector",
            (
                o.manifest_path(),
                _OUT,
                o.arg("--attributes", required=True, help="grouping, e.g. race,gender"),
                o.overwrite("replace existing --out and --dead-letter files"),
                o.image_root(),
                o.arg(
                    "--dead-letter",
                    help="CSV of the rows without one face (default: OUT + .dead_letter.csv)",
                ),
                o.arg(
                    "--detector",
                    choices=("yunet", "haar"),
                    default="yunet",
                    help="OpenCV's YuNet CNN (default: finds 100 of scikit-image's 100 LFW "
                    "faces, the cascade 80) or its Haar cascade",
                ),
            ),
            run_detect,
            description="Detect the face of every row without a face box (OpenCV's YuNet or "
            "Haar cascade, from wheels; nothing is downloaded) and write the manifest with "
            "face_x/y/w/h, face_detector, face_confidence and face_detection filled. Images with "
            "no face or several faces keep blank boxes, are listed in --dead-letter with the "
            "reason, and are dead-lettered by runs that need the box; the miss rate per group is "
            "printed.",
        ),
    ),
)
