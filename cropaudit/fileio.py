"""Reading and writing bytes at local paths or ``gs://`` URIs, through Beam's filesystems.

One way to touch storage everywhere in cropaudit, so that every path a user gives may be local or
on GCS (Beam picks the filesystem by scheme; tests point GCS at an emulator).
"""

from __future__ import annotations

import posixpath
import uuid
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

from cropaudit.errors import UserError


def is_remote(uri: str) -> bool:
    return "://" in uri


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(base, *parts)
    return str(Path(base, *parts))


def dirname(uri: str) -> str:
    if is_remote(uri):
        return posixpath.dirname(uri.rstrip("/"))
    return str(Path(uri).parent)


def exists(uri: str) -> bool:
    return FileSystems.exists(uri)


def read_bytes(uri: str, limit: int | None = None) -> bytes:
    """The whole object at ``uri``; a file larger than ``limit`` bytes raises ``UserError``."""
    if not FileSystems.exists(uri):
        raise FileNotFoundError(uri)
    with FileSystems.open(uri) as fh:
        data = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise UserError(f"{uri} is larger than the {limit}-byte limit")
    return data


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri``, creating local parent folders."""
    if not is_remote(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    with FileSystems.create(uri) as fh:
        fh.write(data)


def write_atomic(uri: str, data: bytes) -> None:
    """Write so that readers never see a partial file (temp name, then rename)."""
    tmp = f"{uri}.tmp-{uuid.uuid4().hex}"  # unique: concurrent writers never share a temp
    write_bytes(tmp, data)
    if FileSystems.exists(uri):
        FileSystems.delete([uri])
    FileSystems.rename([tmp], [uri])


def glob(pattern: str) -> list[str]:
    """Sorted paths matching ``pattern`` (local or remote)."""
    result = FileSystems.match([pattern])[0]
    return sorted(m.path for m in result.metadata_list)


def delete_tree(uri: str) -> None:
    if FileSystems.exists(uri):
        FileSystems.delete([uri])
