"""A folder's content as {relative path: sha256}, to assert a command changed nothing but its own
files."""

from __future__ import annotations

import hashlib
from pathlib import Path


def folder_digest(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (FIFOs and folders listed as such), except
    under the paths in ``skip`` (the command's own outputs)."""
    skip = tuple(p.resolve() for p in skip)
    out = {}
    for path in sorted(root.rglob("*")):
        resolved = path.resolve()
        if any(resolved == s or s in resolved.parents for s in skip):
            continue
        key = str(path.relative_to(root))
        if path.is_symlink() or not path.exists():
            out[key] = "link"
        elif path.is_file():
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[key] = "dir" if path.is_dir() else "special"
    return out
