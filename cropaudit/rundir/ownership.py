"""Which folders and files a cropaudit command may write over.

A command that writes a folder (a run, a statistics output, the demo, a converted model) marks it
as its own with ``.cropaudit-output.json`` (kind, config hash, cropaudit version, and at the end
the files it wrote). It writes into an empty or missing folder; anything else needs
``--overwrite``, and even then only what cropaudit wrote there is replaced (:func:`claim`): a
foreign file anywhere below is kept. A folder another kind of output owns is never written
(``stats --out RUN`` would mix two outputs). Single files (an HTML report) are replaced only
when they carry the command's mark.

:func:`writing` wraps a command's writes: the folder's exclusive lock
(:mod:`cropaudit.rundir.locks`), the claim, and removal of temporary files (Beam's
``beam-temp-*`` folders, half-written :func:`cropaudit.fileio.write_atomic` temps, 0-byte table
parts) on every exit path, SIGINT and SIGTERM included.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cropaudit import __version__, fileio
from cropaudit.errors import UserError
from cropaudit.rundir import locks

MARKER = ".cropaudit-output.json"
#: The file a finished output (a run, a statistics output) writes last: readers refuse a folder
#: without it.
SUCCESS = "_SUCCESS"
BEAM_TEMP = "beam-temp-"
#: Files of every folder that are bookkeeping, not content.
BOOKKEEPING = (MARKER, locks.LOCK_NAME)


@dataclass(frozen=True)
class OutputKind:
    """One kind of output folder: the files it consists of."""

    name: str
    #: Relative paths of the files it writes; ``*`` matches within one path component.
    patterns: tuple[str, ...]
    #: Folders whose ``*.parquet`` files are read back as one table: a foreign Parquet file
    #: there would join the table, so it is refused rather than kept.
    tables: tuple[str, ...] = ()
    #: Folders below it that other kinds write (the demo's ``run/`` and ``stats/``).
    inner: tuple[str, ...] = ()

    def writes_at(self, rel: str) -> bool:
        """Whether this kind (or one written inside it) writes, replaces or deletes at ``rel``:
        one of its files, a folder above them, its bookkeeping or a temporary file."""
        parts = rel.split("/")
        above = tuple(
            "/".join(p.split("/")[:n])
            for p in (*self.patterns, *self.inner)
            for n in range(1, p.count("/") + 2)
        )
        return (
            rel in BOOKKEEPING
            or matches(rel, above)
            or parts[0] in self.inner
            or any(p.startswith(BEAM_TEMP) or fileio.TEMP_MARK in p for p in parts)
        )


def root_file(name: str, doc: str | None = None) -> property:
    """A property of an output folder (an object with ``root``): the path of ``name`` in it."""
    return property(lambda folder: fileio.join(folder.root, name), doc=doc)


def matches(rel: str, patterns: tuple[str, ...]) -> bool:
    parts = rel.split("/")
    return any(
        len(p) == len(parts) and all(map(fnmatch.fnmatchcase, parts, p))
        for p in (pattern.split("/") for pattern in patterns)
    )


def read_owner(folder: str) -> dict | None:
    """The folder's marker, or None (no marker, or not one cropaudit can read)."""
    try:
        owner = json.loads(fileio.read_bytes(fileio.join(folder, MARKER)))
    except (FileNotFoundError, ValueError):
        return None
    return owner if isinstance(owner, dict) and "kind" in owner else None


def _write_marker(folder: str, kind: OutputKind, config_hash: str | None, **state) -> None:
    record = {
        "kind": kind.name,
        "config_hash": config_hash,
        "cropaudit_version": __version__,
        **state,
    }
    fileio.write_atomic(fileio.join(folder, MARKER), json.dumps(record, indent=1).encode())


def _content(folder: str) -> dict[str, int]:
    """Relative path -> size of every file below ``folder`` but its bookkeeping."""
    found = {fileio.relative(p, folder): n for p, n in fileio.files_under(folder).items()}
    return {rel: n for rel, n in found.items() if rel not in BOOKKEEPING}


def is_debris(rel: str, size: int, kind: OutputKind) -> bool:
    """A temporary file a writer left: in a Beam temp folder, a ``write_atomic`` temp, or a
    0-byte Parquet part (never a valid table file)."""
    parts = rel.split("/")
    if any(p.startswith(BEAM_TEMP) for p in parts) or fileio.TEMP_MARK in parts[-1]:
        return True
    return size == 0 and parts[-1].endswith(".parquet") and "/".join(parts[:-1]) in kind.tables


def claim(
    folder: str,
    kind: OutputKind,
    *,
    overwrite: bool,
    config_hash: str | None = None,
    rerun: bool = False,
) -> None:
    """Make ``folder`` this kind's output, or raise ``UserError`` saying why it may not be.

    ``overwrite`` (or ``rerun``, for a folder this kind already owns) removes what cropaudit
    wrote there: the files a finished output's marker lists, or for an unfinished one (a killed
    or failed run) the files at this kind's names; temporary files everywhere. Every other file
    is kept; in a folder without a marker, a file at one of this kind's names is refused.
    """
    ours, kept = _claimable(folder, kind, overwrite=overwrite, rerun=rerun)
    for rel in sorted(ours):
        fileio.delete_tree(fileio.join(folder, rel))
    remove_debris(folder, kind)
    _write_marker(folder, kind, config_hash, finished=False, files=[], kept=kept)


def _claimable(
    folder: str, kind: OutputKind, *, overwrite: bool, rerun: bool
) -> tuple[set[str], list[str]]:
    """What :func:`claim` removes and keeps, or its ``UserError``; changes nothing."""
    _refuse_links(folder, kind)
    owner = read_owner(folder)
    if owner and owner["kind"] != kind.name:
        raise UserError(
            f"{folder} holds a cropaudit {owner['kind']} output; write the {kind.name} output to "
            "another folder"
        )
    content = _content(folder)
    if content and not (overwrite or (rerun and owner)):
        example = sorted(content)[0]
        what = (
            f"already holds a {kind.name} output"
            if owner
            else f"is not empty and not a cropaudit {kind.name} output (e.g. {example})"
        )
        raise UserError(
            f"{folder} {what}; pass --overwrite to replace the files a {kind.name} writes "
            "(other files are kept), or choose another folder"
        )
    ours = {rel for rel, size in content.items() if is_debris(rel, size, kind)}
    named = {rel for rel in content if matches(rel, kind.patterns)} - ours
    if owner and owner.get("finished"):  # only names of this kind: a marker cannot widen them
        ours |= {r for r in owner.get("files") or () if isinstance(r, str) and r in named}
    elif owner:  # unfinished: its names, but not the foreign files its claim kept
        ours |= named - set(owner.get("kept") or ())
    elif named:
        raise UserError(
            f"{fileio.join(folder, sorted(named)[0])} was not written by cropaudit (the folder has "
            "no cropaudit marker); move it away or choose another folder"
        )
    kept = sorted(set(content) - ours)
    strays = [r for r in kept if r.endswith(".parquet") and r.rpartition("/")[0] in kind.tables]
    if strays:
        raise UserError(
            f"{fileio.join(folder, strays[0])} was not written by cropaudit {kind.name} and would "
            "be read as part of its table; move it away or choose another folder"
        )
    return ours, kept


def _refuse_links(folder: str, kind: OutputKind) -> None:
    """``UserError`` when a path this kind writes at is a symbolic link: writing, truncating or
    deleting through it would change files outside ``folder`` (Beam's sink deletes the old
    parts of the table folder it writes). Other links are kept and never followed."""
    links = [rel for rel in fileio.links_under(folder) if kind.writes_at(rel)]
    if links:
        raise UserError(
            f"{fileio.join(folder, links[0])} is a symbolic link, and cropaudit {kind.name} writes "
            "there: it would write or delete files outside the folder through it; replace it "
            "with a real file or folder, or choose another folder"
        )


def finish(folder: str, kind: OutputKind, config_hash: str | None = None) -> list[str]:
    """Record the files this kind wrote in ``folder`` (what a later ``--overwrite`` may
    replace: its names, less the foreign files kept at the claim); returns them, relative."""
    kept = set((read_owner(folder) or {}).get("kept") or ())
    files = sorted(r for r in _content(folder) if matches(r, kind.patterns) and r not in kept)
    _write_marker(folder, kind, config_hash, finished=True, files=files, kept=sorted(kept))
    return files


def remove_debris(folder: str, kind: OutputKind) -> list[str]:
    """Delete the temporary files writers left below ``folder``; returns what went."""
    gone = set()
    for rel, size in _content(folder).items():
        if is_debris(rel, size, kind):
            parts = rel.split("/")
            temp = next((i for i, p in enumerate(parts) if p.startswith(BEAM_TEMP)), None)
            gone.add("/".join(parts[: temp + 1]) if temp is not None else rel)
    if not fileio.is_remote(folder) and Path(folder).is_dir():  # empty local temp folders
        gone.update(p.relative_to(folder).as_posix() for p in Path(folder).rglob(BEAM_TEMP + "*"))
    for rel in sorted(gone):
        fileio.delete_tree(fileio.join(folder, rel))
    return sorted(gone)


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` in the main thread (as SIGINT
    raises ``KeyboardInterrupt``), so ``finally`` clauses run; a no-op off the main thread. The
    first SIGTERM puts the previous handler back, so a second one ends the process even if the
    first one's exception was swallowed (Python drops exceptions raised inside a GC callback)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def writing(
    folder: str,
    kind: OutputKind,
    *,
    command: str | None = None,
    **claiming: object,
) -> Iterator[None]:
    """Lock ``folder``, claim it for ``kind`` (``claiming``: :func:`claim`'s ``overwrite``,
    ``config_hash`` and ``rerun``), and remove temporary files however the block ends."""
    _require_folder(folder)
    with terminate_raises(), locks.exclusive(folder, command or f"cropaudit {kind.name}"):
        claim(folder, kind, **claiming)
        try:
            yield
        finally:
            remove_debris(folder, kind)


def check_writable(
    folder: str,
    kind: OutputKind,
    *,
    overwrite: bool,
    rerun: bool = False,
    command: str | None = None,
) -> None:
    """Raise now the ``UserError`` :func:`writing` would raise (a file, a folder another command
    is writing, or one this kind may not claim), changing nothing: a run checks this before it
    spends minutes downloading a model."""
    _require_folder(folder)
    if not fileio.exists(folder):
        return
    with locks.exclusive(folder, command or f"cropaudit {kind.name}"):
        _claimable(folder, kind, overwrite=overwrite, rerun=rerun)


def _require_folder(folder: str) -> None:
    if fileio.exists(folder) and not fileio.is_folder(folder):
        raise UserError(f"{folder} exists and is not a folder; choose an empty or new folder")


def html_mark(kind: str) -> str:
    """The ``<meta>`` tag that makes an HTML file recognisably this command's own."""
    return f'<meta name="generator" content="cropaudit {kind}">'


def check_replaceable(path: str, mark: str) -> None:
    """``UserError`` unless ``path`` is absent or a file that carries ``mark`` (in its first
    64 KiB): a folder or someone else's file is never replaced."""
    if fileio.is_folder(path):
        raise UserError(f"{path} is a folder; write the file somewhere else")
    if not fileio.exists(path):
        return
    head = fileio.read_bytes(path)[:65536] if fileio.is_remote(path) else _head(path)
    if mark.encode() not in head:
        raise UserError(
            f"{path} exists and was not written by this cropaudit command; move it away or "
            "choose another file"
        )


def check_new_file(path: str, overwrite: bool) -> None:
    """``UserError`` unless ``path`` may be written: a file that cannot carry a mark (a CSV
    manifest, a PNG overlay) is replaced only with ``--overwrite``, and a folder never."""
    if fileio.is_folder(path):
        raise UserError(f"{path} is a folder; write the file somewhere else")
    if fileio.exists(path) and not overwrite:
        raise UserError(f"{path} exists; pass --overwrite to replace it, or choose another file")


def _head(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(65536)


def replace_own_file(path: str, data: bytes, mark: str) -> None:
    """Write ``data`` (which carries ``mark``) to ``path`` if :func:`check_replaceable`."""
    check_replaceable(path, mark)
    fileio.write_atomic(path, data)
