"""An exclusive lock on an output folder, so that two commands never write the same place.

Local folders: ``fcntl.flock`` on ``FOLDER/.cropaudit.lock``; the kernel drops the lock when its
holder dies, so a killed run never leaves a lock that blocks the next one (the file's holder
record is then simply replaced). ``gs://`` folders: a lock object created with
``ifGenerationMatch=0`` (GCS creates it only if it does not exist) and deleted, generation
matched, on release; a lock left by a dead process on this host is taken over, one left on
another host is named in the error so a person can delete it.

The holder record (pid, host, start time, command) is what the second writer's error names.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass

from cropaudit import fileio
from cropaudit.errors import UserError

LOCK_NAME = ".cropaudit.lock"


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    since: str
    command: str

    @classmethod
    def me(cls, command: str) -> Holder:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return cls(os.getpid(), socket.gethostname(), now, command)

    @classmethod
    def parse(cls, data: bytes) -> Holder | None:
        try:
            d = json.loads(data)
            return cls(int(d["pid"]), str(d["host"]), str(d["since"]), str(d["command"]))
        except (ValueError, KeyError, TypeError):
            return None

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    def is_dead_here(self) -> bool:
        """The holder ran on this host and its process is gone."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False


def _busy(folder: str, lock: str, holder: Holder | None) -> UserError:
    who = (
        f"`{holder.command}` (pid {holder.pid} on {holder.host}, since {holder.since})"
        if holder
        else "another cropaudit process"
    )
    return UserError(
        f"{folder} is being written by {who}; wait for it to finish or choose another folder "
        f"(if that process is gone, delete {lock})"
    )


@contextlib.contextmanager
def exclusive(folder: str, command: str) -> Iterator[Holder]:
    """Hold the folder's lock for the ``with`` block; ``UserError`` at once if it is held."""
    lock = fileio.join(folder, LOCK_NAME)
    me = Holder.me(command)
    release = (
        _acquire_gcs(folder, lock, me)
        if fileio.is_remote(folder)
        else _acquire_local(folder, lock, me)
    )
    try:
        yield me
    finally:
        release()


def _acquire_local(folder: str, lock: str, me: Holder):
    import fcntl

    os.makedirs(folder, exist_ok=True)
    while True:
        fd = _open_lock(lock)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with os.fdopen(fd, "rb") as fh:
                raise _busy(folder, lock, Holder.parse(fh.read())) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its previous holder unlinked while we opened it
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, me.to_bytes())

    def release() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)  # while still locked: the next holder creates a fresh file
        os.close(fd)

    return release


def _open_lock(lock: str) -> int:
    """The lock file, opened without following a link: a ``.cropaudit.lock`` that is a symbolic
    link, a hard link or not a regular file is refused before a byte is written (its holder
    record would otherwise overwrite the file it points to)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(lock, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(lock):
            raise UserError(
                f"{lock} is a symbolic link; cropaudit will not write through it: "
                "delete it and rerun"
            ) from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):
            raise UserError(f"{lock} is not a regular file; delete it and rerun") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        what = "a hard link to another file" if stat.S_ISREG(info.st_mode) else "not a file"
        raise UserError(f"{lock} is {what}; cropaudit will not write it: delete it and rerun")
    os.set_blocking(fd, True)
    return fd


def _acquire_gcs(folder: str, lock: str, me: Holder):
    from google.api_core.exceptions import NotFound, PreconditionFailed
    from google.cloud import storage

    bucket_name, _, name = lock[len("gs://") :].partition("/")
    blob = storage.Client().bucket(bucket_name).blob(name)
    for _ in range(3):
        if blob.exists():  # a store that ignores preconditions still sees a held lock
            blob.reload()
            holder = Holder.parse(blob.download_as_bytes())
            if holder is None or not holder.is_dead_here():
                raise _busy(folder, lock, holder)
            with contextlib.suppress(NotFound, PreconditionFailed):
                blob.delete(if_generation_match=blob.generation)  # a dead holder's lock
            continue
        try:
            blob.upload_from_string(me.to_bytes(), if_generation_match=0)
        except PreconditionFailed:  # created since we looked
            continue
        break
    else:
        raise _busy(folder, lock, None)
    generation = blob.generation

    def release() -> None:
        with contextlib.suppress(NotFound, PreconditionFailed):
            blob.delete(if_generation_match=generation)

    return release
