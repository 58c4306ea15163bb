"""The one way out of a ``cropaudit`` process, whatever the command's outcome.

:func:`run_command_line` turns every outcome into an exit status: a return value, a usage error
or ``--help`` (argparse's ``SystemExit``), SIGTERM (``SystemExit(143)``, ``rundir.ownership``),
Ctrl-C (130), a reader that closed stdout (``| head``: 141, as a process killed by SIGPIPE, with
no traceback) or a bug (its traceback, 1). Python's own shutdown then runs as usual (non-daemon
threads joined, ``atexit`` handlers: worker processes, temporary folders, logging), and last of
all :func:`_leave` ends the process with that status *before* the interpreter finalizes. After
an interruption the threads are not joined (:func:`_leave_now`).

Why not let it finalize: native thread pools may still be finishing work then. pyarrow (Beam
2.70 holds it below 19) releases a Parquet fragment that wraps Python bytes on an Arrow pool
thread after ``pq.read_table`` has returned; when that release meets finalization, the thread is
unwound inside a C++ destructor and libstdc++ aborts the process ("terminate called without an
active exception", exit 134; apache/arrow#49942, fixed in later pyarrow). A second ``cropaudit
plan`` refusing to overwrite its table hit it about one run in eight.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import sys
import traceback
from collections.abc import Callable

from cropaudit import startup_logs

#: Exit status when the reader of stdout went away: 128 + SIGPIPE, as the shell reports a
#: process the signal ended.
CLOSED_PIPE = 141
#: Ctrl-C (128 + SIGINT) and SIGTERM (128 + SIGTERM): the process leaves without joining threads.
INTERRUPTED = (130, 143)

_status: int | None = None
_filter: startup_logs.StderrFilter | None = None


def run_command_line(main: Callable[[list[str]], int], argv: list[str], quiet: bool) -> int:
    """``main(argv)``'s exit status, once this process is set to leave through :func:`_leave`;
    ``quiet``: libraries' notices are filtered from descriptor 2 (:mod:`cropaudit.startup_logs`).
    """
    global _status, _filter
    atexit.register(_leave)  # before any library registers its own: runs after all of them
    if quiet:
        _filter = startup_logs.filter_stderr()
    try:
        _status = int(main(argv) or 0)
    except SystemExit as exc:
        _status = exit_status(exc.code)
    except KeyboardInterrupt:
        print("cropaudit: interrupted", file=sys.stderr)
        _status = 130
    except BrokenPipeError:
        if not stdout_closed():
            raise  # some other pipe: a bug to show (the interpreter prints it; status 1)
        _status = _drop_stdout()
    except BaseException:
        traceback.print_exc()
        _status = 1
    if _status in INTERRUPTED:
        _leave_now()
    return _status


def _leave_now() -> None:
    """Leave at once after Ctrl-C or SIGTERM: the ``atexit`` handlers run (temporary folders,
    worker processes; :func:`_leave`, registered first, runs last and ends the process), but
    Python does not first join the non-daemon threads, because an interrupted bundle leaves
    Beam's state-sampler thread looping (it is stopped only when a bundle finishes), and joining
    it would keep the process alive for ever."""
    atexit._run_exitfuncs()
    os._exit(_status if _status is not None else 1)


def exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` gives: ``None`` 0, an int itself, anything else (a message
    it prints) 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def stdout_closed() -> bool:
    """Whether stdout is a pipe or socket whose reader has gone."""
    try:
        poller = select.poll()
        poller.register(1, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def _drop_stdout() -> int:
    """Point stdout at /dev/null (so flushing it cannot fail again); :data:`CLOSED_PIPE`."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return CLOSED_PIPE


def _leave() -> None:
    """The last ``atexit`` handler: flush stdout and stderr, let the stderr filter finish, and
    end the process with the recorded status, skipping the interpreter's finalization."""
    status = 1 if _status is None else _status
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = _drop_stdout() if status == 0 else status
    except (OSError, ValueError):
        pass
    if _filter is not None:
        _filter.close()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(status)
