"""``cropaudit model list|fetch|info``: the model catalogue from the command line.

:data:`ACTIONS` are the ``model`` command's actions beside ``convert``.
"""

from __future__ import annotations

import argparse
import hashlib
import os

from cropaudit.commands import options as o
from cropaudit.model.catalogue import LOCAL_KINDS


def _list(args: argparse.Namespace) -> int:
    from cropaudit.model.catalogue import catalogue

    entries = catalogue(args.catalogue).values()
    width = max(16, *(len(e.name) for e in entries))
    for entry in entries:
        size = f"{entry.size:,} B" if entry.size else "-"
        print(f"{entry.name:<{width}} {entry.kind:<9} {size:>12}  {entry.licence or '-'}")
        if entry.source:
            print(f"{'':<{width}} {entry.source}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from cropaudit.model.download import fetch

    print(fetch(args.name, args.cache, args.offline, args.catalogue))
    return 0


def _info(args: argparse.Namespace) -> int:
    from cropaudit import fileio
    from cropaudit.model.catalogue import catalogue

    entries = catalogue(args.catalogue)
    entry = entries.get(args.target)
    if entry is None:
        if not fileio.exists(args.target) and not fileio.glob(fileio.join(args.target, "*")):
            from cropaudit.errors import UserError

            raise UserError(f"{args.target!r} is neither a catalogue name nor an existing path")
        for line in describe_path(args.target, entries.values()):
            print(line)
        return 0
    for label, value in (
        ("name", entry.name),
        ("kind", entry.kind),
        ("source", entry.source or "built in"),
        ("sha256", entry.sha256 or "-"),
        ("size", f"{entry.size:,} bytes" if entry.size else "-"),
        ("licence", entry.licence or "-"),
        ("citation", entry.citation or "-"),
        ("input", entry.input_notes or "-"),
    ):
        print(f"{label + ':':<10}{value}")
    local = _available_copy(entry, args.cache)
    if entry.kind not in LOCAL_KINDS:
        print(f"{'cached:':<10}{local or 'no (run: cropaudit model fetch ' + entry.name + ')'}")
    if local and local.endswith(".vxm"):
        for line in vxm_summary(fileio.read_bytes(local)):
            print(line)
    return 0


def _available_copy(entry, cache: str | None) -> str | None:
    """The entry's file if it is already at hand (cache or path source); never downloads."""
    from cropaudit import fileio
    from cropaudit.model.download import cache_path, resolve_cache_dir

    if entry.kind in LOCAL_KINDS:
        return None
    path = cache_path(entry, resolve_cache_dir(cache)) if entry.is_download else entry.source
    return path if fileio.exists(path) else None


def describe_path(path: str, entries) -> list[str]:
    """Hash and size of a model file or folder, the catalogue entry it matches, its layers."""
    from cropaudit import fileio
    from cropaudit.errors import UserError

    data = None
    if not fileio.is_remote(path) and os.path.isdir(path) and not os.listdir(path):
        raise UserError(f"{path} is an empty folder, not a model")
    if path.endswith((".vxm", ".keras", ".h5")) or not fileio.glob(fileio.join(path, "*")):
        data = fileio.read_bytes(path)
        digest = hashlib.sha256(data).hexdigest()
        lines = [f"sha256:   {digest}", f"size:     {len(data):,} bytes"]
    else:
        from cropaudit.model.keras_model import content_hash

        digest = content_hash(path.rstrip("/"))
        lines = [f"content hash (the catalogue sha256 of a folder): {digest}"]
    matches = [e.name for e in entries if e.sha256 == digest]
    lines.append(f"catalogue: {', '.join(matches) or 'matches no entry'}")
    if data is not None and path.endswith(".vxm"):
        lines += vxm_summary(data)
    return lines


def vxm_summary(data: bytes) -> list[str]:
    """One line per layer of a FastGaze ``.vxm`` file (empty when the reader is unavailable)."""
    try:
        from cropaudit.model.fastgaze.vxm import BLUR, CONV, POOL, read_model
    except ImportError:
        return []
    model = read_model(data)
    lines = [f"layers:   {len(model.layers)} ({model.parameter_count:,} parameters)"]
    for layer in model.layers:
        if layer.type == CONV:
            out_c, in_c, kh, kw = layer.weight.shape
            act = f"leaky ReLU a={layer.alpha:g}" if layer.leaky else "ReLU"
            text = f"conv {kh}x{kw} {in_c}->{out_c}, {act}"
        elif layer.type == POOL:
            text = "max-pool 2x2/2"
        elif layer.type == BLUR:
            text = f"Gaussian blur, kernel {layer.kernel_size}, std {layer.std}"
        else:
            text = f"type {layer.type}"
        lines.append(f"  {layer.index:>3}  {text}")
    return lines


_CATALOGUE = o.arg(
    "--catalogue", metavar="FILE", help="user catalogue TOML (default $CROPAUDIT_CATALOGUE)"
)
_CACHE = o.arg("--cache", metavar="DIR", help="cache folder (local or gs://)")

#: ``model list``, ``model fetch`` and ``model info``.
ACTIONS = (
    o.Command(
        "list", "list the catalogue's models", (_CATALOGUE,), _list, "List every catalogue model."
    ),
    o.Command(
        "fetch",
        "download and verify a catalogue model into the cache",
        (
            o.arg("name", metavar="NAME", help="catalogue name, e.g. fastgaze"),
            _CACHE,
            o.flag("--offline", "never use the network"),
            _CATALOGUE,
        ),
        _fetch,
        "Download NAME once into the cache, check its size and sha256, and print its path; a "
        "cached copy is re-verified and reused.",
    ),
    o.Command(
        "info",
        "describe a catalogue model or a model file",
        (
            o.arg("target", metavar="NAME|PATH", help="catalogue name or model path"),
            _CACHE,
            _CATALOGUE,
        ),
        _info,
        "Print hash, size, licence and citation of a catalogue model (from its cached copy, never "
        "downloading), or the hash of a model file or folder; a .vxm file also gets a layer "
        "summary.",
    ),
)
