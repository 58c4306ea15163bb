"""Reading and writing bytes at local paths or ``gs://`` URIs, through Beam's filesystems.

One way to touch storage everywhere in cropaudit, so that every path a user gives may be local or
on GCS (Beam picks the filesystem by scheme; tests point GCS at an emulator).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import posixpath
import stat
import uuid
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

from cropaudit.errors import NotAFileError, TooLargeError, UserError

#: Set to an emulator's URL (``http://127.0.0.1:PORT``): google-cloud-storage then talks to it.
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"


def use_emulator_credentials() -> None:
    """Under a GCS emulator, make Beam's GCS client anonymous, as google-cloud-storage does.

    Without this, Beam first looks for Application Default Credentials and retries the lookup
    with exponential backoff (about 40 s per process) before connecting anonymously anyway.
    Called on import, so Beam workers that import cropaudit do the same; a no-op otherwise.
    """
    if not os.environ.get(EMULATOR_ENV):
        return
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:  # pragma: no cover - Beam without the gcp extra
        return
    creds = getattr(auth, "_Credentials", None)
    if creds is None:  # pragma: no cover - a Beam release that moved it: slow, still correct
        return
    with creds._credentials_lock:
        creds._credentials = None
        creds._credentials_init = True


use_emulator_credentials()


def is_remote(uri: str) -> bool:
    return "://" in uri


def absolute(uri: str) -> str:
    """``uri`` as every worker sees it: a local path made absolute (workers of a cluster run in
    other folders), a remote one unchanged."""
    return uri if is_remote(uri) else os.path.abspath(uri)


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(base, *parts)
    return str(Path(base, *parts))


def dirname(uri: str) -> str:
    if is_remote(uri):
        return posixpath.dirname(uri.rstrip("/"))
    return str(Path(uri).parent)


def exists(uri: str) -> bool:
    """Whether a file, or (on object stores) a folder, i.e. any object under ``uri/``, exists."""
    return FileSystems.exists(uri) or (is_remote(uri) and bool(_objects_under(uri)))


def _objects_under(uri: str) -> dict[str, int]:
    """Every object below the folder ``uri`` of an object store (which has no real folders):
    path -> size in bytes."""
    result = FileSystems.match([uri.rstrip("/") + "/**"])[0]
    return {m.path: m.size_in_bytes for m in result.metadata_list}


def read_bytes(uri: str, limit: int | None = None) -> bytes:
    """The whole object at ``uri``; a file larger than ``limit`` bytes raises
    :class:`TooLargeError` (at most ``limit + 1`` bytes are read), a local path that is not a
    regular file :class:`NotAFileError` (it is never read, so a FIFO or device cannot block)."""
    if not is_remote(uri):
        return _read_local(uri, limit)
    if not FileSystems.exists(uri):
        raise FileNotFoundError(uri)
    with FileSystems.open(uri) as fh:
        data = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise TooLargeError(f"{uri} is larger than the {limit}-byte limit")
    return data


def _read_local(path: str, limit: int | None) -> bytes:
    # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one;
    # the type is then checked on the open descriptor, so the path cannot be swapped in between.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise NotAFileError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a FIFO opened for writing only)
            raise NotAFileError(f"{path} is not a regular file (a socket?)") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotAFileError(f"{path} is not a regular file ({_kind(mode)}); not reading it")
        os.set_blocking(fd, True)
        data = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise TooLargeError(f"{path} is larger than the {limit}-byte limit")
    return data


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"  # pragma: no cover


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri``, creating local parent folders."""
    if not is_remote(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    with FileSystems.create(uri) as fh:
        fh.write(data)


#: Marks a file being written by :func:`write_atomic` (debris if the process died).
TEMP_MARK = ".tmp-"


def write_atomic(uri: str, data: bytes) -> None:
    """Write so that readers never see a partial file (temp name, then rename). Only ever
    replaces a file: a folder at ``uri`` is refused, never deleted; the temp file is removed
    on every exit path."""
    if is_folder(uri):
        raise UserError(f"{uri} is a folder; refusing to replace it with a file")
    tmp = f"{uri}{TEMP_MARK}{uuid.uuid4().hex}"  # unique: concurrent writers never share a temp
    try:
        write_bytes(tmp, data)
        if not is_remote(uri):
            os.replace(tmp, uri)  # atomic; replaces a file, never a folder
            return
        if FileSystems.exists(uri):
            FileSystems.delete([uri])
        FileSystems.rename([tmp], [uri])
    except BaseException:
        if FileSystems.exists(tmp):
            FileSystems.delete([tmp])
        raise


def is_folder(uri: str) -> bool:
    """Whether ``uri`` is a folder (on object stores: has objects below it)."""
    if is_remote(uri):
        return bool(_objects_under(uri))
    return Path(uri).is_dir()


def files_under(uri: str) -> dict[str, int]:
    """Every file below the folder ``uri``, at any depth: path -> size in bytes."""
    if is_remote(uri):
        return _objects_under(uri)
    root = Path(uri)
    if not root.is_dir():
        return {}
    return {str(p): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def links_under(uri: str) -> list[str]:
    """Symbolic links below the local folder ``uri`` (not followed), relative with ``/``;
    none on object stores, which have no links."""
    if is_remote(uri) or not os.path.isdir(uri):
        return []
    found = []
    for top, dirs, files in os.walk(uri):
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            if os.path.islink(path):
                found.append(Path(path).relative_to(uri).as_posix())
    return sorted(found)


def relative(uri: str, root: str) -> str:
    """``uri`` relative to the folder ``root``, with ``/`` separators."""
    if is_remote(root):
        return uri[len(root.rstrip("/")) + 1 :]
    return Path(uri).relative_to(root).as_posix()


def glob(pattern: str) -> list[str]:
    """Sorted paths matching ``pattern`` (local or remote).

    As for local paths, folders match too: on object stores, a folder is the common prefix of
    the objects below it (``gs://b/run/*`` lists ``gs://b/run/survival``).
    """
    result = FileSystems.match([pattern])[0]
    paths = {m.path for m in result.metadata_list}
    if is_remote(pattern) and "**" not in pattern:
        paths.update(_remote_folders(pattern))
    return sorted(paths)


def _remote_folders(pattern: str) -> set[str]:
    pattern = pattern.rstrip("/")
    wild = min((i for i in (pattern.find(c) for c in "*?[") if i >= 0), default=len(pattern))
    base = pattern[: pattern.rfind("/", 0, wild)]  # the literal folder above the first wildcard
    depth = pattern.count("/")
    found = set()
    for path in _objects_under(base):
        parts = path.split("/")
        if len(parts) > depth + 1:  # an object strictly below a candidate folder
            folder = "/".join(parts[: depth + 1])
            if fnmatch.fnmatchcase(folder, pattern):
                found.add(folder)
    return found


def delete_tree(uri: str) -> None:
    """Delete the file or folder ``uri`` (on object stores: every object below it too); a
    local symbolic link is removed itself, never what it points to."""
    if not is_remote(uri) and os.path.islink(uri):
        os.unlink(uri)
        return
    if FileSystems.exists(uri):
        FileSystems.delete([uri])
    if is_remote(uri) and _objects_under(uri):
        FileSystems.delete([uri.rstrip("/") + "/"])  # recursive on GCS
