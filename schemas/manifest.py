"""The declared manifest schema: columns, limits, formats and dead-letter reason codes.

One source of truth for what a manifest may contain, shared by the reader
(``transforms.manifests``), the importers and the ``manifest`` command. Every value is read as
text; attribute columns are whichever the experiment asks for.
"""

from __future__ import annotations

#: Columns every manifest must have, besides one column per requested attribute.
REQUIRED_COLUMNS: tuple[str, ...] = ("image_uri",)

#: Optional columns and what they default to when absent or blank.
OPTIONAL_COLUMNS: dict[str, str] = {
    "image_id": "the image file name without its extension",
    "subject_id": "the image id (one photo per person)",
}

#: Face box of a full-body image, in pixels of the image *as displayed*: EXIF orientation is
#: applied when images are decoded (``transforms.images``), so for a photo whose EXIF rotates it
#: the box must be given in the rotated (upright) frame, as image viewers and most face detectors
#: report it. ``face_x``/``face_y`` is the top-left corner, ``face_w``/``face_h`` the size;
#: numbers (fractions allowed). Required in every row of a ``single``-design run (design kind
#: ``single``, the "male gaze" check) and ignored otherwise; the box is scaled and moved with the
#: image onto the canvas. A row without it is dead-lettered ``missing_face_box``; a box that is not
#: numbers with a positive size, or that does not lie inside the image, ``bad_face_box``.
FACE_BOX_COLUMNS: tuple[str, ...] = ("face_x", "face_y", "face_w", "face_h")

#: Every manifest value is text; numbers in JSONL/Parquet are read as their text form.
COLUMN_TYPE = "string"

#: Longest accepted value (characters) in a used field; longer ones are dead-lettered.
MAX_FIELD_LENGTH = 2048

#: Largest manifest file read into memory (bytes); bigger ones raise ``ManifestError``.
MAX_MANIFEST_BYTES = 1 << 30

#: Manifest formats by file extension (``format="auto"``).
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}

#: Separator of attribute values in a group label (``B/F``), so it may not occur in a value.
GROUP_SEPARATOR = "/"

#: Key the reader adds to a row it could only partly read; its value is ``code`` or
#: ``code: detail``. Reserved: a manifest may not have a column of this name.
ROW_ERROR_KEY = "__cropaudit_row_error__"

#: Dead-letter reason codes (stage ``manifest``) and what each means.
REASONS: dict[str, str] = {
    "missing_field": "a required column (image_uri or a requested attribute) is absent in the row",
    "empty_field": "a required value is blank",
    "invalid_field": "a value holds control characters, or a separator it may not contain",
    "field_too_long": f"a used value is longer than {MAX_FIELD_LENGTH} characters",
    "unknown_label": "an attribute value is outside the allowed labels for that attribute",
    "missing_label": "an attribute value is a missing-value spelling (groups.missing_labels)",
    "duplicate_image_id": "an earlier valid row already has this image id (first one is kept)",
    "bad_encoding": "the row held bytes that are not UTF-8 (decoded with replacement characters)",
    "malformed_row": "the row could not be parsed (bad JSON line, extra CSV fields, not an object)",
    "missing_face_box": "single design: a face box column (face_x/face_y/face_w/face_h) is blank",
    "bad_face_box": "single design: the face box is not numbers with a positive size, or (stage"
    " render, once the image is decoded) does not lie inside the image",
    "no_face": "single design: no face box, and the face detector found no face in the image",
    "several_faces": "single design: no face box, and the face detector found several faces",
}

#: ``face_detection`` values (``cropaudit manifest detect-faces``) that are dead-letter reasons.
DETECTOR_MISSES: tuple[str, ...] = ("no_face", "several_faces")
