"""Progress of a local audit run on stderr, and the run's Beam metrics counters afterwards.

Beam's own counters (``composites_rendered``, ``composites_predicted``,
``composites_dead_lettered`` ...) only reach the launcher when a bundle commits, which on the local
runner is often the whole stage at once, so they cannot drive a live display. Instead, while a
:class:`ProgressReporter` is active, :func:`track` hangs a tiny counting step off the pipeline:
every worker (in-process threads or ``multi_processing`` subprocesses on the same machine) appends
``"<kind> <count>\\n"`` lines to one file in a private temporary folder at most a few times per
second, and a daemon thread in the launcher sums them and redraws one status line on stderr.

Progress is decoration: it is off unless stderr is a terminal, and nothing here may fail a run:
every error in the counting step, the reader thread or the metrics query is swallowed.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import IO, Any

import apache_beam as beam

_LOGGER = logging.getLogger(__name__)
_FILE = "progress.log"
_LABELS = itertools.count()
_ACTIVE: ProgressReporter | None = None

#: Counter names that :func:`format_counters` lists first, in this order.
COUNTER_ORDER = (
    "composites_rendered",
    "composites_predicted",
    "composites_dead_lettered",
    "inference_retries",
)


class _Tick(beam.DoFn):
    """Counts the elements it sees; appends the count to the progress file now and then."""

    def __init__(self, path: str, kind: str, interval: float = 0.2):
        self._path = path
        self._kind = kind
        self._interval = interval

    def setup(self):
        self._pending = 0
        self._last = 0.0

    def process(self, element):
        self._pending += 1
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._flush()
        return ()

    def finish_bundle(self):
        self._flush()

    def teardown(self):
        self._flush()

    def _flush(self) -> None:
        n, self._pending = self._pending, 0
        if not n:
            return
        try:  # one short O_APPEND write per flush: lines from several processes never interleave
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, f"{self._kind} {n}\n".encode())
            finally:
                os.close(fd)
        except Exception:  # noqa: BLE001 - progress must never fail a run
            pass


def active_path() -> str | None:
    """The progress file of the active reporter, or None when no progress is shown."""
    reporter = _ACTIVE
    return reporter.path if reporter is not None and reporter.enabled else None


def track(done: Any, *dead_letters: Any) -> None:
    """Count ``done`` (composites through a cropper; None: none here) and ``dead_letters``
    (PCollections of composites that could not go on) for the active reporter; adds nothing
    when none is active. Attach it to each branch before a ``Flatten``: the local runner runs
    what follows a Flatten of several stages only once they have all finished, so a count
    there would sit at 0 until the end."""
    path = active_path()
    if path is None:
        return
    try:
        n = next(_LABELS)
        if done is not None:
            done | f"ProgressDone{n}" >> beam.ParDo(_Tick(path, "done"))
        for i, letters in enumerate(dead_letters):
            letters | f"ProgressDead{n}_{i}" >> beam.ParDo(_Tick(path, "dead"))
    except Exception as exc:  # noqa: BLE001
        _LOGGER.debug("progress tracking not attached: %s", exc)


def bar(
    done: int,
    dead: int,
    expected: int,
    seconds: float,
    width: int = 28,
    rate: float | None = None,
    unit: str = "composites",
) -> str:
    """One status line, e.g. ``[#####.....] 7/12 composites (58%), 1 dead-lettered, 3.5/s``;
    ``unit``: what is counted (``crops`` when several croppers score each composite)."""
    finished = done + dead
    total = max(expected, finished, 1)
    frac = min(1.0, finished / total)
    filled = int(round(frac * width))
    line = (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{expected} {unit} "
        f"({frac:.0%}), {dead} dead-lettered"
    )
    if rate is None and finished and seconds > 0:
        rate = finished / seconds
    if rate:
        line += f", {rate:.1f}/s"
        if finished < expected:
            line += f", ~{(expected - finished) / rate:.0f} s left"
    return f"{line}, {seconds:.0f} s"


class ProgressReporter:
    """Context manager that shows ``done/expected`` composites and dead letters on ``stream``.

    :func:`reporter` decides ``enabled`` (a terminal, and not quiet). Counts come from
    :func:`track`'s steps through a file in a private temporary folder, read every ``interval``
    seconds.
    """

    def __init__(
        self,
        expected: int,
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        interval: float = 0.25,
        unit: str = "composites",
    ):
        self.expected = int(expected)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.done = 0
        self.dead = 0
        self.path: str | None = None
        self._dir: str | None = None
        self._offset = 0
        self._partial = b""
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: ProgressReporter | None = None
        self._drawn = 0
        self._first: tuple[float, int] | None = None  # (time, count) of the first counts seen

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> ProgressReporter:
        global _ACTIVE
        if not self.enabled:
            return self
        try:
            self._dir = tempfile.mkdtemp(prefix="cropaudit-progress-")
            self.path = os.path.join(self._dir, _FILE)
            self._started = time.monotonic()
            self._previous, _ACTIVE = _ACTIVE, self
            self._thread = threading.Thread(target=self._loop, name="cropaudit-progress")
            self._thread.daemon = True
            self._thread.start()
        except Exception as exc:  # noqa: BLE001
            _LOGGER.debug("progress disabled: %s", exc)
            self.enabled = False
        return self

    def __exit__(self, *exc_info) -> None:
        global _ACTIVE
        if not self.enabled:
            return
        try:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=2.0)
            self.poll()
            self._draw(final=True)
        except Exception:  # noqa: BLE001
            pass
        finally:
            if _ACTIVE is self:
                _ACTIVE = self._previous
            if self._dir:
                shutil.rmtree(self._dir, ignore_errors=True)

    # -- reading and drawing ---------------------------------------------------------------------

    def poll(self) -> tuple[int, int]:
        """Read what the workers appended since the last poll; returns (done, dead)."""
        if not self.path:
            return self.done, self.dead
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return self.done, self.dead
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            kind, _, n = line.decode(errors="replace").partition(" ")
            try:
                count = int(n)
            except ValueError:
                continue
            if kind == "done":
                self.done += count
            elif kind == "dead":
                self.dead += count
        if self._first is None and self.done + self.dead:
            self._first = (time.monotonic(), self.done + self.dead)
        return self.done, self.dead

    def line(self) -> str:
        """The status line; the rate counts from the first results, not from start-up (loading
        the model and starting workers take a while before anything is counted)."""
        now = time.monotonic()
        rate = None
        if self._first is not None:
            since, n0 = self._first
            if now - since >= 1.0 and self.done + self.dead > n0:
                rate = (self.done + self.dead - n0) / (now - since)
        elapsed = now - self._started
        return bar(self.done, self.dead, self.expected, elapsed, rate=rate or 0.0, unit=self.unit)

    def _draw(self, final: bool = False) -> None:
        text = self.line()
        pad = " " * max(0, self._drawn - len(text))
        self._drawn = len(text)
        self.stream.write(f"\r{text}{pad}" + ("\n" if final else ""))
        self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
                self._draw()
            except Exception:  # noqa: BLE001 - never let the display fail the run
                pass


def reporter(
    expected: int,
    *,
    enabled: bool = True,
    stream: IO[str] | None = None,
    unit: str = "composites",
):
    """A :class:`ProgressReporter` that shows progress only when ``enabled`` and ``stream`` (stderr
    by default) is a terminal."""
    stream = stream if stream is not None else sys.stderr
    enabled = bool(enabled) and _isatty(stream)
    return ProgressReporter(expected, enabled=enabled, stream=stream, unit=unit)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:  # noqa: BLE001
        return False


# -- Beam metrics after the run ------------------------------------------------------------------


def beam_counters(result: Any, namespace: str = "cropaudit") -> dict[str, int]:
    """The run's Beam counters in ``namespace`` (summed over steps), or ``{}`` when the runner
    cannot tell."""
    try:
        from apache_beam.metrics.metric import MetricsFilter

        found = result.metrics().query(MetricsFilter().with_namespace(namespace))
        totals: dict[str, int] = {}
        for counter in found.get("counters", ()):
            value = counter.committed if counter.committed is not None else counter.attempted
            name = counter.key.metric.name
            totals[name] = totals.get(name, 0) + int(value or 0)
    except Exception as exc:  # noqa: BLE001
        _LOGGER.debug("no Beam metrics: %s", exc)
        return {}
    for name in COUNTER_ORDER[:3]:  # a counter never incremented is not reported: it is 0
        totals.setdefault(name, 0)
    order = {name: i for i, name in enumerate(COUNTER_ORDER)}
    return dict(sorted(totals.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def format_counters(counters: dict[str, int]) -> str:
    """``rendered 12, predicted 12, dead-lettered 0`` from :func:`beam_counters`' dict."""
    return ", ".join(
        f"{name.removeprefix('composites_').replace('_', '-')} {value}"
        for name, value in counters.items()
    )
