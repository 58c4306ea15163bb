"""Known saliency models by name: where each comes from, its checksum, licence and citation.

A catalogue name (``--model fastgaze``) pins one exact file, so a result row's model name and
hash always mean the same weights. Built-in entries live here; users add their own (e.g. an
MSI-Net SavedModel on ``gs://``) in a TOML file given by ``--catalogue FILE`` or the
``CROPAUDIT_CATALOGUE`` environment variable::

    [models.msinet]
    kind = "keras"                      # fastgaze | keras
    source = "gs://bucket/msinet"       # https:// URL (one file) or a local/gs:// path
    sha256 = "..."                      # see below
    size = 123456                       # bytes; required for URLs, optional for paths
    licence = "MIT"
    citation = "Kroner et al. (2020)"
    input_notes = "RGB 0..255, fitted to 320x320"

``sha256`` is the file's sha256, or for a directory (a SavedModel) the hash that
:func:`cropaudit.model.keras_model.content_hash` computes.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from cropaudit import fileio
from cropaudit.errors import UserError

KINDS = ("fastgaze", "keras", "builtin", "cropper")
#: Kinds that ship with cropaudit or its extras: nothing to fetch, reserved for built-in names.
LOCAL_KINDS = ("builtin", "cropper")
CATALOGUE_ENV = "CROPAUDIT_CATALOGUE"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
#: The commit of twitter-research/image-crop-analysis whose ``bin/fastgaze.vxm`` is pinned.
FASTGAZE_COMMIT = "91e60934a76e0acef304609e65352bbcd52ca32b"


@dataclass(frozen=True)
class CatalogueEntry:
    """One named model: an immutable source and the checksum its bytes must have."""

    name: str
    kind: str
    source: str = ""  # https:// URL, local or gs:// path; empty for built-in models
    sha256: str = ""
    size: int | None = None  # bytes of the file (of all files, for a directory)
    licence: str = ""
    citation: str = ""
    input_notes: str = ""

    def __post_init__(self) -> None:
        where = f"catalogue entry {self.name!r}"
        for f in _TEXT_FIELDS:
            if not isinstance(getattr(self, f), str):
                raise UserError(f"{where}: {f} must be a string")
        if not _NAME.match(self.name):
            raise UserError(f"{where}: name must be lower-case letters, digits, '-', '_', '.'")
        if self.kind not in KINDS:
            raise UserError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind in LOCAL_KINDS:
            return
        if not self.source:
            raise UserError(f"{where}: needs a source (URL or path)")
        if not _SHA256.match(self.sha256):
            raise UserError(f"{where}: sha256 must be 64 lower-case hex digits")
        if self.size is not None and (type(self.size) is not int or self.size <= 0):
            raise UserError(f"{where}: size must be a positive number of bytes")
        if self.is_download and self.size is None:
            raise UserError(f"{where}: a URL source needs its size in bytes")
        if "://" in self.source and not (self.is_download or self.source.startswith("gs://")):
            raise UserError(f"{where}: source must be an https:// URL or a local/gs:// path")

    @property
    def is_download(self) -> bool:
        """Whether the source is fetched over HTTP(S) into the cache (else read in place)."""
        return self.source.startswith(("https://", "http://"))


_FIELDS = tuple(f.name for f in fields(CatalogueEntry) if f.name != "name")
_TEXT_FIELDS = ("name", *(f for f in _FIELDS if f != "size"))


BUILTIN: Mapping[str, CatalogueEntry] = {
    e.name: e
    for e in (
        CatalogueEntry(
            name="fastgaze",
            kind="fastgaze",
            source="https://raw.githubusercontent.com/twitter-research/image-crop-analysis/"
            f"{FASTGAZE_COMMIT}/bin/fastgaze.vxm",
            sha256="b76cefc218ec8969cc62b26ad0f41111800421287e7f2725d808da1d90afbdf7",
            size=489_616,
            licence="Apache-2.0 (Twitter, Inc.)",
            citation="L. Theis, I. Korshunova, A. Tejani, F. Huszár, 'Faster Gaze Prediction "
            "With Dense Networks and Fisher Pruning' (2018), arXiv:1801.05787; K. Yee, "
            "U. Tantipongpipat, S. Mishra, 'Image Cropping on Twitter: Fairness Metrics, their "
            "Limitations, and the Importance of Representation, Design, and Agency' (2021), "
            "arXiv:2105.08667",
            input_notes="RGB JPEG decoded and fitted to 320x320 (spec §3), VGG BGR means "
            "subtracted; one score per 16-pixel cell",
        ),
        CatalogueEntry(
            name="baseline",
            kind="builtin",
            licence="Apache-2.0 (cropaudit)",
            citation="weight-free centre-surround contrast baseline built into cropaudit",
            input_notes="any RGB image; no download",
        ),
        CatalogueEntry(
            name="smartcrop",
            kind="cropper",
            licence="MIT (smartcrop.py; PyPI smartcrop, extra 'croppers')",
            citation="J. Wagner, smartcrop.js (2014); D. Fischer, H. Hattori, smartcrop.py",
            input_notes="box cropper: skin (fixed skin colour), edge and saturation scores; "
            "default settings, recorded per row",
        ),
        *(
            CatalogueEntry(
                name=f"vips-{strategy}",
                kind="cropper",
                licence="LGPL-2.1-or-later (libvips, in PyPI pyvips-binary); MIT (pyvips); "
                "extra 'croppers'",
                citation="J. Cupitt et al., libvips vips_smartcrop (interesting="
                f"{strategy}); as called by sharp, imgproxy and CMS thumbnailers",
                input_notes=note,
            )
            for strategy, note in (
                (
                    "attention",
                    "box cropper: skin colour (fixed vector), saturation and edges; "
                    "largest box of each ratio centred on the attention centre",
                ),
                (
                    "entropy",
                    "box cropper: trims the lower-entropy edge until the largest box "
                    "of each ratio fits",
                ),
                ("centre", "box cropper (control): the largest box of each ratio, centred"),
            )
        ),
        CatalogueEntry(
            name="thumbor",
            kind="cropper",
            licence="MIT (thumbor, in its own venv); OpenCV Haar cascades (BSD-3-Clause)",
            citation="thumbor 7.8 (thumbor.org), smart crop via GET /meta: face detection, "
            "then image features",
            input_notes="box cropper: a thumbor server started for the run (loopback); "
            "largest box of each ratio around its focal points",
        ),
        CatalogueEntry(
            name="opencv-spectral-residual",
            kind="cropper",
            licence="Apache-2.0 (OpenCV contrib; PyPI opencv-contrib-python-headless)",
            citation="X. Hou, L. Zhang, 'Saliency Detection: A Spectral Residual Approach' "
            "(CVPR 2007)",
            input_notes="saliency map of the resized image, mean-pooled to stride 8; Twitter's "
            "crop rule",
        ),
        CatalogueEntry(
            name="opencv-fine-grained",
            kind="cropper",
            licence="Apache-2.0 (OpenCV contrib; PyPI opencv-contrib-python-headless)",
            citation="S. Montabone, A. Soto, 'Human detection using a mobile platform and novel "
            "features derived from a visual saliency mechanism' (2010)",
            input_notes="saliency map of the resized image, mean-pooled to stride 8; Twitter's "
            "crop rule",
        ),
    )
}


def load_user_catalogue(path: str) -> dict[str, CatalogueEntry]:
    """Entries from a user TOML file; an unknown key or a clash with a built-in name is refused."""
    try:
        text = fileio.read_bytes(path, limit=1 << 20).decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"catalogue file not found: {path}") from None
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    for key in doc:
        if key != "models":
            raise UserError(f"{path}: unknown top-level key {key!r}; entries go in [models.NAME]")
    entries = {}
    for name, table in doc.get("models", {}).items():
        where = f"{path}: [models.{name}]"
        if not isinstance(table, dict):
            raise UserError(f"{where} must be a table")
        for key in table:
            if key not in _FIELDS:
                hint = difflib.get_close_matches(key, _FIELDS, n=1)
                also = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise UserError(f"{where}: unknown key {key!r}{also}; known: {', '.join(_FIELDS)}")
        if name in BUILTIN:
            raise UserError(f"{where}: {name!r} is a built-in model and cannot be redefined")
        if table.get("kind") in LOCAL_KINDS:
            raise UserError(
                f"{where}: kind {table['kind']!r} is reserved for cropaudit's own models"
            )
        try:
            entries[name] = CatalogueEntry(name=name, **table)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        except TypeError as exc:  # a missing required field
            raise UserError(f"{where}: {exc}") from None
    return entries


def catalogue(path: str | None = None) -> dict[str, CatalogueEntry]:
    """Built-in entries plus those of ``path`` (default: ``$CROPAUDIT_CATALOGUE``, if set)."""
    path = path or os.environ.get(CATALOGUE_ENV) or None
    return {**BUILTIN, **(load_user_catalogue(path) if path else {})}


def lookup(name: str, path: str | None = None) -> CatalogueEntry:
    """The entry called ``name``; an unknown name lists the known ones."""
    entries = catalogue(path)
    try:
        return entries[name]
    except KeyError:
        raise UserError(
            f"unknown model {name!r}; the catalogue has: {', '.join(sorted(entries))}"
        ) from None
