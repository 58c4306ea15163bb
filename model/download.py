"""Fetching a catalogue model: download once into a cache, verify size and sha256, then reuse.

Nothing reaches the cache unverified: a download is checked in memory (it is bounded by the
catalogue's size) and only then written under a temporary name and renamed, so a failed, short
or tampered download leaves no file behind. The cache may be a ``gs://`` folder, so every
worker of a pipeline shares one copy. A model whose source is a local or ``gs://`` path is
verified where it lies and never copied.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import posixpath
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from apache_beam.io.filesystems import FileSystems

from cropaudit import __version__, fileio
from cropaudit.errors import UserError
from cropaudit.model.catalogue import LOCAL_KINDS, CatalogueEntry, lookup

CACHE_ENV = "CROPAUDIT_CACHE"
OFFLINE_ENV = "CROPAUDIT_OFFLINE"
DEFAULT_CACHE = os.path.join("~", ".cache", "cropaudit", "models")
#: Seconds any one socket operation may block, and the whole download may take.
TIMEOUT_S = 30
DEADLINE_S = 600
_CHUNK = 1 << 16


def resolve_cache_dir(cache_dir: str | None = None) -> str:
    """The cache folder: the argument, else ``$CROPAUDIT_CACHE``, else ``~/.cache/...``."""
    chosen = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return chosen if fileio.is_remote(chosen) else os.path.expanduser(chosen)


def is_offline(offline: bool = False) -> bool:
    """Offline when asked to, or when ``$CROPAUDIT_OFFLINE`` is set to a true value."""
    return offline or os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def cache_path(entry: CatalogueEntry, cache_dir: str) -> str:
    """Where a downloaded model lives: one folder per sha256, keeping the file's own name."""
    filename = posixpath.basename(urllib.parse.urlparse(entry.source).path) or "model"
    return fileio.join(cache_dir, entry.sha256, filename)


def fetch(
    name: str,
    cache_dir: str | None = None,
    offline: bool = False,
    catalogue_file: str | None = None,
) -> str:
    """The local or ``gs://`` path of model ``name``'s verified file, downloading it once."""
    return fetch_entry(lookup(name, catalogue_file), cache_dir, offline)


def fetch_entry(entry: CatalogueEntry, cache_dir: str | None = None, offline: bool = False) -> str:
    """:func:`fetch` for an entry already looked up (what a worker holds)."""
    if entry.kind in LOCAL_KINDS:
        raise UserError(f"model {entry.name!r} is built in; there is nothing to fetch")
    if not entry.is_download:
        verify_in_place(entry)
        return entry.source
    path = cache_path(entry, resolve_cache_dir(cache_dir))
    if fileio.exists(path):
        _verify_cached(entry, path)
        return path
    if is_offline(offline):
        raise UserError(
            f"model {entry.name!r} is not in the cache and offline mode is on: download "
            f"{entry.source} (sha256 {entry.sha256}, {entry.size} bytes) and place it at {path}"
        )
    data = download(entry.source, entry.size)
    check_digest(entry, data, f"the download of {entry.source}")
    _publish(path, data)
    return path


def check_digest(entry: CatalogueEntry, data: bytes, what: str) -> None:
    """Refuse bytes whose sha256 is not the catalogue's."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        raise UserError(
            f"{what} does not match catalogue model {entry.name!r}: expected sha256 "
            f"{entry.sha256}, got {actual}"
        )


def _verify_cached(entry: CatalogueEntry, path: str) -> None:
    advice = "; delete it to download it again"
    try:
        data = fileio.read_bytes(path, limit=entry.size)
    except UserError:
        raise UserError(f"cached file {path} is larger than {entry.size} bytes{advice}") from None
    if len(data) != entry.size:
        raise UserError(f"cached file {path} has {len(data)} bytes, not {entry.size}{advice}")
    try:
        check_digest(entry, data, f"cached file {path}")
    except UserError as exc:
        raise UserError(f"{exc}{advice}") from None


def verify_in_place(entry: CatalogueEntry) -> None:
    """Check a path-sourced model: a file's sha256, or a folder's Keras content hash."""
    source = entry.source.rstrip("/")
    if entry.kind == "keras" and not source.endswith((".keras", ".h5")):
        from cropaudit.model.keras_model import content_hash

        actual = content_hash(source)
        if actual != entry.sha256:
            raise UserError(
                f"model folder {source} does not match catalogue model {entry.name!r}: "
                f"expected content hash {entry.sha256}, got {actual}"
            )
        if entry.size is not None:
            found = FileSystems.match([fileio.join(source, "**")])[0].metadata_list
            total = sum(m.size_in_bytes for m in found)
            if total != entry.size:
                raise UserError(f"model folder {source} holds {total} bytes, not {entry.size}")
        return
    try:
        data = fileio.read_bytes(source, limit=entry.size)
    except FileNotFoundError:
        raise UserError(f"model {entry.name!r}: file not found: {source}") from None
    if entry.size is not None and len(data) != entry.size:
        raise UserError(f"model file {source} has {len(data)} bytes, not {entry.size}")
    check_digest(entry, data, f"model file {source}")


def download(url: str, size: int) -> bytes:
    """The body at ``url``, refused unless it is exactly ``size`` bytes; bounded in time."""
    request = urllib.request.Request(url, headers={"User-Agent": f"cropaudit/{__version__}"})
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.strip() != str(size):
                raise UserError(
                    f"wrong size: {url} is {declared} bytes, the catalogue expects {size}"
                )
            chunks: list[bytes] = []
            deadline = time.monotonic() + DEADLINE_S
            while received <= size:
                chunk = response.read(min(_CHUNK, size + 1 - received))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
                if time.monotonic() > deadline:
                    raise UserError(f"download of {url} took longer than {DEADLINE_S} s")
    except urllib.error.HTTPError as exc:
        raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        got = received + len(exc.partial)
        raise UserError(f"truncated download: {url} ended after {got} of {size} bytes") from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise UserError(
            f"download of {url} failed after {received} of {size} bytes: {reason}"
        ) from None
    if received < size:
        raise UserError(f"truncated download: {url} ended after {received} of {size} bytes")
    if received > size:
        raise UserError(f"wrong size: {url} sent more than the {size} bytes the catalogue expects")
    return b"".join(chunks)


def _publish(path: str, data: bytes) -> None:
    """Write under a unique temporary name, then rename, so readers never see a partial file."""
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        fileio.write_bytes(tmp, data)
        FileSystems.rename([tmp], [path])
    except BaseException:
        with contextlib.suppress(Exception):
            if fileio.exists(tmp):
                FileSystems.delete([tmp])
        raise
