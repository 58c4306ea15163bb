"""Error types shared across cropaudit."""

import errno


class UserError(Exception):
    """A problem the user can fix (bad config, manifest or path): the CLI prints it, exit 2."""


class ConfigError(UserError):
    """An invalid experiment config; the message names the offending key."""


class ManifestError(UserError):
    """A manifest that cannot be used at all (missing columns, unreadable file, empty group)."""


class JobFailed(UserError):
    """A pipeline the engine (a Flink cluster, a job service) ran and reported as failed; the
    message carries the engine's error in one line. Nothing of the run is published."""


class NotAFileError(UserError):
    """A local path that is not a regular file (FIFO, device, socket, folder): never opened for
    reading, since reading it could block forever or never end."""


class TooLargeError(UserError):
    """A file larger than the byte limit its reader allows: never read past that limit."""


def first_line(exc: BaseException) -> str:
    """An exception's message, first line only (a library's error as part of ours)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


#: How a full disk or an exhausted quota shows in an error's text, when a pipeline runner
#: re-raised it as another type (Beam's ``RuntimeError: OSError: [Errno 28] ...``).
FULL_TEXT = ("[Errno 28]", "No space left on device", "[Errno 122]", "Disk quota exceeded")


def disk_full(exc: BaseException, out: str | None) -> str | None:
    """The one line for an error caused by a full disk (or quota), naming the path it could
    not write (the error's, else the command's output ``out``); None for any other error.
    Nothing is finished then: ``_SUCCESS`` is written last, so a reader refuses the folder."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if full or any(t in str(exc) for t in FULL_TEXT):
            path = getattr(exc, "filename", None) or out or "the output"
            return (
                f"no space left on the device holding {path} (disk full); nothing was "
                "published (no _SUCCESS): free space and rerun"
            )
        exc = exc.__cause__ or exc.__context__
    return None
