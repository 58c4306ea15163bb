"""Keep libraries' log notices off a ``cropaudit`` command's terminal (``--verbose`` shows them).

TensorFlow's C++ side logs through absl before anyone could call ``absl::InitializeLog``, and
does so in every process that loads it: the launcher, Beam's ``multi_processing`` workers,
smartcrop's spawned pool (which re-imports Beam, whose missing ``crcmod`` is then reported
again). No environment variable silences all of it, and Python cannot see what C++ writes to
file descriptor 2. So the command line (:func:`filter_stderr`, from :mod:`cropaudit.shutdown`)
points descriptor 2 at a pipe that a small filter process reads; child processes inherit it.
The filter drops only lines that match a known notice (:data:`NATIVE_NOTICES`,
:data:`PYTHON_NOTICES`) and copies every other byte to the real stderr; Python's
``sys.stderr`` in the launcher is bound to the real stderr directly, so cropaudit's own messages
and tracebacks never pass through the filter at all. The filter is a process, not a thread, so
what a crashing process wrote is still copied out after it died. In the launcher, Beam's
notices are dropped before they are formatted, by a logging filter (:func:`quiet`). Library
users importing cropaudit are unaffected: only :func:`cropaudit.cli.main` calls these.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import signal
import subprocess
import sys

#: Lines TensorFlow (through absl) writes on stderr while it loads and starts: information, the
#: notice that absl is not initialised, and on GPU hosts the well-known duplicate-registration
#: and TensorRT notices.
NATIVE_NOTICES = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+\s+\d+ \S+:\d+\] "  # absl INFO lines (oneDNN, cpu_feature_guard ...)
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler"
    r"|[EW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] Unable to register cu(DNN|FFT|BLAS) factory"
    r"|[EW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] computation placer already registered"
    r"|\S*TF-TRT Warning: Could not find TensorRT)"
)
#: Beam's start-up warnings: (logger name, start of the message).
PYTHON_NOTICES = (
    ("root", "crcmod package not found."),
    ("apache_beam.transforms.core", "Using yield and return in the process method of"),
)
#: The same warnings as another process prints them: bare (``logging.lastResort``) or in
#: ``logging``'s default format (``WARNING:root:crcmod ...``).
_PRINTED_NOTICES = re.compile(
    "|".join(
        rf"^(?:[A-Z]+:{re.escape(name)}:)?{re.escape(start)}" for name, start in PYTHON_NOTICES
    )
)
#: How long the filter holds a line that has not ended (a prompt, a progress line) before it
#: copies it out anyway.
PARTIAL_LINE_SECONDS = 0.2


class _NoticeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not any(
            record.name == name and message.startswith(start) for name, start in PYTHON_NOTICES
        )


_FILTER = _NoticeFilter()


def keep_line(line: str) -> bool:
    """Whether a line some process wrote on stderr is more than a library's notice."""
    return not (NATIVE_NOTICES.match(line) or _PRINTED_NOTICES.match(line))


def quiet() -> None:
    """Drop Beam's start-up notices in this process's logging from now on."""
    for name, _ in PYTHON_NOTICES:
        logger = logging.getLogger(None if name == "root" else name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class StderrFilter:
    """Descriptor 2 of this process (and of every child it starts) goes through
    :func:`copy_kept` in a filter process until :meth:`close`; ``sys.stderr`` writes to the
    real stderr meanwhile."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self._real = os.dup(2)  # not inheritable: children get the pipe
        self._stderr = sys.stderr
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=self._real,
            stderr=self._real,
        )
        os.dup2(self._process.stdin.fileno(), 2)
        self._process.stdin.close()  # descriptor 2 is now this process's only write end
        sys.stderr = os.fdopen(
            os.dup(self._real), "w", buffering=1, encoding=self._stderr.encoding,
            errors="backslashreplace",
        )  # fmt: skip

    def close(self, timeout: float = 2.0) -> None:
        """Give descriptor 2 back to the real stderr; wait (up to ``timeout``) until the filter
        copied out what this process and its children wrote."""
        for stream in (sys.stderr, self._stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os.dup2(self._real, 2)
        os.close(self._real)
        sys.stderr, self._stderr = self._stderr, sys.stderr
        self._stderr.close()
        # a child still running keeps the pipe open; the filter ends when that child does
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout)


def filter_stderr() -> StderrFilter | None:
    """Starts a :class:`StderrFilter`; ``None`` (nothing filtered) when stderr is not open."""
    try:
        os.fstat(2)
    except OSError:
        return None
    return StderrFilter()


def copy_kept(source: int, target: int) -> None:
    """Copy ``source`` to ``target`` until end of file, line by line, leaving out the lines
    :func:`keep_line` rejects. A line not ended within :data:`PARTIAL_LINE_SECONDS` is copied
    as it is. When ``target`` is gone (a closed pipe), ``source`` is still read to the end, so
    writers never block."""
    pending = b""
    alive = True

    def write(data: bytes) -> None:
        nonlocal alive
        while alive and data:
            try:
                data = data[os.write(target, data) :]
            except OSError:
                alive = False

    while True:
        ready, _, _ = select.select([source], [], [], PARTIAL_LINE_SECONDS if pending else None)
        if not ready:
            write(pending)
            pending = b""
            continue
        chunk = os.read(source, 1 << 16)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        write(b"".join(line + b"\n" for line in lines if keep_line(line.decode(errors="replace"))))
    if pending and keep_line(pending.decode(errors="replace")):
        write(pending)


if __name__ == "__main__":  # the filter process of StderrFilter
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: keep copying until the writers end
    copy_kept(0, 1)
