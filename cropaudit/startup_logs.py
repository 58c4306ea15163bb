"""Keep libraries' start-up notices off a ``cropaudit`` command's stderr (``--verbose`` shows them).

TensorFlow's C++ side logs through absl while it loads, before anyone could call
``absl::InitializeLog``, so ``TF_CPP_MIN_LOG_LEVEL`` (or any other variable) cannot silence
those lines: while ``tensorflow`` is first imported, file descriptor 2 is pointed at a temporary
file, and afterwards every captured line that is not a known start-up notice is written back to
the real stderr (an error during the import is therefore still shown, just after it). Beam's
Python warnings of the same kind (no ``crcmod``; a DoFn that mixes ``yield`` and ``return``, a
lint about the source, not the data) are dropped by a logging filter on the two loggers that
emit them. Library users importing cropaudit are unaffected: only :func:`cropaudit.cli.main`
calls :func:`quiet`.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from cropaudit.errors import FULL_TEXT

#: Lines TensorFlow (through absl) writes on stderr while it loads: information, and on GPU
#: hosts the well-known duplicate-registration and TensorRT notices.
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
#: The logger Beam's runner logs a failed bundle's traceback on: a full disk is then said in
#: one line by :func:`cropaudit.errors.disk_full` instead.
BUNDLE_ERRORS = "apache_beam.runners.common"


class _NoticeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if record.name == BUNDLE_ERRORS:
            return not any(t in message for t in FULL_TEXT)
        return not any(
            record.name == name and message.startswith(start) for name, start in PYTHON_NOTICES
        )


_FILTER = _NoticeFilter()


def keep_line(line: str) -> bool:
    """Whether a line TensorFlow's import wrote on stderr is more than a start-up notice."""
    return not NATIVE_NOTICES.match(line)


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 for the block, then write back what :func:`keep_line` keeps."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = "".join(line for line in text.splitlines(True) if keep_line(line))
            if kept:
                os.write(2, kept.encode("utf-8"))


class _Loader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` inside :func:`filtered_stderr`."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name):  # resources, source, ... as the real loader has them
        return getattr(self._loader, name)


class _TensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, with its loader wrapped; once."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def quiet() -> None:
    """Drop the start-up notices of TensorFlow (if not imported yet) and Beam from now on."""
    for name in (*(n for n, _ in PYTHON_NOTICES), BUNDLE_ERRORS):
        logger = logging.getLogger(None if name == "root" else name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    if "tensorflow" not in sys.modules and not any(
        isinstance(f, _TensorFlowFinder) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _TensorFlowFinder())
