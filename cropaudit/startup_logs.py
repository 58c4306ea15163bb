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
users importing cropaudit are unaffected: only the command line (:func:`cropaudit.cli.main`)
installs these.
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
import traceback

from cropaudit.errors import FULL_TEXT

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
#: Beam's warnings about its own set-up: (logger name, start of the message). ``__main__`` is
#: Beam's ``sdk_worker_main`` in a ``multi_processing`` worker.
PYTHON_NOTICES = (
    ("root", "crcmod package not found."),
    ("apache_beam.transforms.core", "Using yield and return in the process method of"),
    ("apache_beam.options.pipeline_options", "Discarding unparseable args"),
    ("__main__", "No semi_persistent_directory found"),
)
#: The logger through which the local job service relays its workers' log entries
#: (``Worker: severity: WARN ... message: "..."``).
RELAY_LOGGER = "apache_beam.runners.portability.local_job_service"
#: The same warnings as another process prints them, bare (``logging.lastResort``) or in
#: ``logging``'s default format (``WARNING:root:crcmod ...``); the information Beam's workers
#: log at their default level (``INFO:apache_beam.runners.worker.sdk_worker:...``); and the
#: notice Google's client libraries give at import about grpcio's future releases (cropaudit's
#: own ``__init__`` ignores it, but a worker imports those libraries before cropaudit).
_PRINTED_NOTICES = re.compile(
    "|".join(
        [
            *(rf"^(?:[A-Z]+:{re.escape(n)}:)?{re.escape(start)}" for n, start in PYTHON_NOTICES),
            r"^INFO:(?:apache_beam(?:\.\w+)*|__main__):",
        ]
    )
)
_GOOGLE_WARNING = re.compile(r"^\S*/google/\S+\.py:\d+: FutureWarning: ")
#: The source line ``warnings`` prints under a warning (dropped with the warning).
_WARNING_SOURCE = re.compile(r"^\s+\S")
#: How long the filter holds a line that has not ended (a prompt, a progress line) before it
#: copies it out anyway.
PARTIAL_LINE_SECONDS = 0.2
#: The logger Beam's runner logs a failed bundle's traceback on: a full disk is then said in
#: one line by :func:`cropaudit.errors.disk_full` instead.
BUNDLE_ERRORS = "apache_beam.runners.common"


class _NoticeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == RELAY_LOGGER:  # a worker's entry: its message is inside
            relayed = record.getMessage()
            return not any(f'message: "{start}' in relayed for _, start in PYTHON_NOTICES)
        message = str(record.msg)
        if record.name == BUNDLE_ERRORS:
            return not any(t in message for t in FULL_TEXT)
        return not any(
            record.name == name and message.startswith(start) for name, start in PYTHON_NOTICES
        )


_FILTER = _NoticeFilter()


def keep_line(line: str) -> bool:
    """Whether a line some process wrote on stderr is more than a library's notice."""
    return not any(p.match(line) for p in (NATIVE_NOTICES, _PRINTED_NOTICES, _GOOGLE_WARNING))


def quiet() -> None:
    """Drop Beam's start-up notices (and its log of a full disk) in this process's logging from
    now on."""
    for name in {*(name for name, _ in PYTHON_NOTICES), RELAY_LOGGER, BUNDLE_ERRORS}:
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
        encoding = self._stderr.encoding
        real = os.fdopen(os.dup(self._real), "w", 1, encoding, errors="backslashreplace")
        sys.stderr = real

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
    """Starts a :class:`StderrFilter`; ``None`` (nothing filtered) when stderr is not open or
    the filter process cannot start."""
    try:
        os.fstat(2)
        return StderrFilter()
    except OSError:
        return None


def copy_kept(source: int, target: int) -> None:
    """Copy ``source`` to ``target`` until end of file, line by line, leaving out the lines
    :func:`keep_line` rejects. A line not ended within :data:`PARTIAL_LINE_SECONDS` is copied
    as it is. When ``target`` is gone (a closed pipe), ``source`` is still read to the end, so
    writers never block."""
    pending = b""
    alive = True
    warned = False  # the last line was a dropped warning: its source line follows

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
        kept = []
        for line in lines:
            text = line.decode(errors="replace")
            below = warned and _WARNING_SOURCE.match(text)
            warned = bool(_GOOGLE_WARNING.match(text))
            if keep_line(text) and not below:
                kept.append(line + b"\n")
        write(b"".join(kept))
    if pending and keep_line(pending.decode(errors="replace")):
        write(pending)


def _copy_all(source: int, target: int) -> None:
    """Copy everything, filtering nothing (what the filter does if it ever fails itself)."""
    while chunk := os.read(source, 1 << 16):
        with contextlib.suppress(OSError):
            os.write(target, chunk)


if __name__ == "__main__":  # the filter process of StderrFilter
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: keep copying until the writers end
    try:
        copy_kept(0, 1)
    except Exception:  # noqa: BLE001 - never lose what the command writes: say so, copy the rest
        os.write(1, f"cropaudit: stderr filter failed:\n{traceback.format_exc()}".encode())
        _copy_all(0, 1)
