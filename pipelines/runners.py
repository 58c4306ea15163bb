"""Runner profiles: the same pipeline on the local runner, a portable job service, Dataflow or
Flink, chosen by name and always pinned explicitly.

Beam's ``DirectRunner`` first tries to download and start the Prism binary and silently
falls back when it can't; ``direct`` here is the FnApiRunner the fallback would pick, started
directly (``--direct_num_workers``/``--direct_running_mode=multi_processing`` still apply).

Each profile fills in defaults and checks what it cannot run without, before any worker starts
(see :func:`apply_profile`; ``deploy/README.md`` has the full commands):

``portable``
    ``--job_endpoint`` defaults to ``localhost:8099`` (Beam's job-server port) and
    ``--environment_type`` to ``LOOPBACK`` (workers run in the submitting process: no Docker).
    ``EXTERNAL`` and ``PROCESS`` need ``--environment_config`` (a worker-pool address, or the
    PROCESS JSON). Tested here with Beam's local job service and an EXTERNAL worker pool.
``dataflow``
    needs ``--project``, ``--region`` and a ``gs://`` ``--temp_location``. Workers need the
    project: with ``--sdk_container_image`` (``deploy/Dockerfile``) the image carries it;
    otherwise, unless ``--extra_package``/``--setup_file`` is given, the project's wheel is built
    from this checkout and shipped with ``--extra_package``. Not tested here (no GCP).
``flink``
    submits through Beam's Flink job server for Flink 1.19 clusters, started from the verified
    engine cache (``make flink-engine``, :mod:`cropaudit.engine`) unless
    ``--flink_job_server_jar`` or ``--job_endpoint`` names another; with neither and no cache the
    profile refuses to start (Beam would download the jar at run time). ``--flink_master``
    defaults to Beam's ``[auto]`` (an embedded local Flink); ``EXTERNAL`` and ``PROCESS``
    environments need ``--environment_config`` as for ``portable``; SDK workers are kept for
    later stages (``--environment_cache_millis``, :data:`SDK_WORKER_KEEP_MS`). Tested here on a
    local standalone cluster (:mod:`cropaudit.engine.flink_local`) with an EXTERNAL worker pool.
``spark``
    the same through Beam's Spark job server for Spark 3.5 (``--spark_job_server_jar``, else
    the cache's; or a running one at ``--job_endpoint``). ``--spark_master_url`` defaults to
    Beam's ``local[4]`` (Spark inside the job server; Beam then picks ``LOOPBACK`` workers) or
    names a ``spark://HOST:PORT`` master. Tested here with the job server on ``local[2]`` and
    an EXTERNAL worker pool.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DebugOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    SetupOptions,
    SparkRunnerOptions,
    WorkerOptions,
)
from apache_beam.runners.runner import PipelineRunner

from cropaudit.csvcells import reads_as_number
from cropaudit.errors import JobFailed, UserError

RUNNERS = ("direct", "portable", "dataflow", "flink", "spark")

#: How long Flink (Spark) keeps an idle SDK worker for the next stage of the same job. Beam's
#: default, 0, starts a fresh worker (Python, TensorFlow, the model) for every stage.
SDK_WORKER_KEEP_MS = 60_000

#: Beam's conventional job-server port (``local_job_service_main``, the Flink job server).
DEFAULT_JOB_ENDPOINT = "localhost:8099"

_NOT_SOURCES = shutil.ignore_patterns(
    ".*", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks", "deploy"
)


def make_runner(name: str, options: PipelineOptions) -> PipelineRunner:
    """A runner instance for ``name``."""
    if name == "direct":
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        info = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
        return fn_runner.FnApiRunner(provision_info=info)
    if name == "portable":
        from apache_beam.runners.portability.portable_runner import PortableRunner

        return PortableRunner()
    if name == "dataflow":
        from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

        return DataflowRunner()
    if name == "flink":
        from apache_beam.runners.portability.flink_runner import FlinkRunner

        return FlinkRunner()
    if name == "spark":
        from apache_beam.runners.portability.spark_runner import SparkRunner

        return SparkRunner()
    raise UserError(f"unknown runner {name!r}; use one of {RUNNERS}")


@contextlib.contextmanager
def pipeline(runner: str, options: PipelineOptions):
    """A ``beam.Pipeline`` on ``runner`` that runs when the block ends; a job the engine reports
    as failed raises :class:`JobFailed` with the engine's error in one line."""
    try:
        with beam.Pipeline(runner=make_runner(runner, options), options=options) as p:
            yield p
    except RuntimeError as exc:
        _raise_interruption(exc)
        if " failed in state " not in str(exc):  # PortableRunner's wording for a failed job
            raise
        why = failure_line(str(exc))
        raise JobFailed(f"{runner}: the job failed on the engine: {why}") from exc


#: How Beam reports a Ctrl-C or SIGTERM (``SystemExit(143)``, :mod:`cropaudit.rundir.ownership`)
#: raised inside a DoFn: it passes the worker as text inside a ``RuntimeError``.
_INTERRUPTED = re.compile(r"\b(?:KeyboardInterrupt\b|SystemExit: (\d+))")


def _raise_interruption(exc: RuntimeError) -> None:
    """Raise the interruption ``exc`` stands for, if any, so the command exits as interrupted
    (130 / 143) rather than with a failed job's traceback."""
    found = _INTERRUPTED.search(str(exc))
    if found is None:
        return
    if found.group(1):
        raise SystemExit(int(found.group(1))) from None
    raise KeyboardInterrupt from None


#: The exception line that ends a Python traceback (``ValueError: ...``, ``pkg.mod.Error: ...``).
_PYTHON_ERROR = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b\S*:\s")


def failure_line(message: str) -> str:
    """The readable core of a failed job's message: Beam prefixes the job id and state, the
    engine adds Java stack traces and, for a worker error, the Python traceback whose exception
    line says what went wrong."""
    body = message.split(" failed in state ", 1)[-1].split(":", 1)[-1]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    tracebacks = [i for i, line in enumerate(lines) if "Traceback (most recent call" in line]
    after = lines[tracebacks[-1] + 1 :] if tracebacks else []
    python = [line for line in after if _PYTHON_ERROR.match(line)]
    line = python[0] if python else (lines[0] if lines else message.strip())
    return line if len(line) <= 400 else line[:397] + "..."


def beam_option_parser() -> argparse.ArgumentParser:
    """A parser of every option Beam's own option classes define (each ``PipelineOptions``
    subclass, recursively, through its ``_add_argparse_args``); errors raise ``UserError``."""
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):
            raise UserError(f"Beam option: {message}")

    parser = Parser(allow_abbrev=False, add_help=False, conflict_handler="resolve")
    seen: set[type] = set()
    todo = [PipelineOptions]
    while todo:
        for cls in todo.pop().__subclasses__():
            if cls not in seen:
                seen.add(cls)
                todo.append(cls)
                if "_add_argparse_args" in cls.__dict__:
                    cls._add_argparse_args(parser)
    return parser


def beam_flags(parser: argparse.ArgumentParser | None = None) -> set[str]:
    """Every ``--flag`` Beam's option classes define."""
    parser = parser or beam_option_parser()
    return {flag for action in parser._actions for flag in action.option_strings}


def unknown_pipeline_args(args: list[str]) -> list[str]:
    """What in ``args`` Beam's option classes do not define (Beam would drop it silently): flags
    of no option class, then values that belong to no flag."""
    parser = beam_option_parser()
    known = beam_flags(parser)
    unknown = [
        name
        for name in (token.split("=", 1)[0] for token in args)
        if name.startswith("-") and name not in known and not reads_as_number(name)
    ]
    return unknown or parser.parse_known_args(args)[1]


def split_runner(pipeline_args: list[str] | None) -> tuple[str, list[str]]:
    """``--runner NAME`` / ``--runner=NAME`` out of the args: (profile name, remaining args)."""
    args = list(pipeline_args or [])
    runner = "direct"
    for i, arg in enumerate(args):
        if arg == "--runner" and i + 1 < len(args):
            runner = args[i + 1]
            del args[i : i + 2]
            break
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
            del args[i]
            break
    runner = runner.lower().removesuffix("runner") or "direct"
    if runner not in RUNNERS:
        raise UserError(f"unknown runner {runner!r}; use one of {RUNNERS}")
    return runner, args


def pipeline_options(pipeline_args: list[str] | None) -> tuple[str, PipelineOptions]:
    """Split ``--runner NAME`` from the Beam options (default ``direct``), apply the profile."""
    runner, args = split_runner(pipeline_args)
    return runner, PipelineOptions(apply_profile(runner, args))


def apply_profile(runner: str, args: list[str], *, build_wheel=None) -> list[str]:
    """``args`` with ``runner``'s defaults appended; ``UserError`` for what the runner needs.

    ``build_wheel`` (tests) replaces :func:`project_wheel` for the ``dataflow`` profile.
    """
    args = list(args)
    opts = PipelineOptions(args)
    if runner == "portable":
        portable = opts.view_as(PortableOptions)
        if not portable.job_endpoint:
            args.append(f"--job_endpoint={DEFAULT_JOB_ENDPOINT}")
        if not portable.environment_type:
            args.append("--environment_type=LOOPBACK")
        _check_environment(runner, portable)
    elif runner in ("flink", "spark"):
        portable = opts.view_as(PortableOptions)
        _check_environment(runner, portable)
        view = FlinkRunnerOptions if runner == "flink" else SparkRunnerOptions
        jar_option = f"{runner}_job_server_jar"
        if not getattr(opts.view_as(view), jar_option) and not portable.job_endpoint:
            args.append(f"--{jar_option}={_cached_job_server(runner)}")
        if not portable.environment_cache_millis:
            args.append(f"--environment_cache_millis={SDK_WORKER_KEEP_MS}")
    elif runner == "dataflow":
        args += _dataflow_defaults(opts, build_wheel or project_wheel)
    return args


def _cached_job_server(runner: str) -> str:
    from cropaudit.engine import cache

    jar = cache.find_job_server_jar(runner=runner)
    if jar is None:
        raise UserError(
            f"{runner}: {cache.missing()} (or pass --{runner}_job_server_jar JAR or "
            "--job_endpoint HOST:PORT); cropaudit never downloads the job server at run time"
        )
    return str(jar)


def _check_environment(runner: str, portable: PortableOptions) -> None:
    env = (portable.environment_type or "").upper()
    if env in ("EXTERNAL", "PROCESS") and not portable.environment_config:
        what = "the worker pool's host:port" if env == "EXTERNAL" else "the PROCESS command JSON"
        raise UserError(f"{runner}: --environment_type={env} needs --environment_config ({what})")


def _dataflow_defaults(opts: PipelineOptions, build_wheel) -> list[str]:
    gcp = opts.view_as(GoogleCloudOptions)
    missing = [
        f"--{name}" for name in ("project", "region", "temp_location") if not getattr(gcp, name)
    ]
    if missing:
        raise UserError(f"dataflow needs {', '.join(missing)}")
    if not gcp.temp_location.startswith("gs://"):
        raise UserError(f"dataflow: --temp_location must be a gs:// path, not {gcp.temp_location}")
    setup = opts.view_as(SetupOptions)
    worker = opts.view_as(WorkerOptions)
    debug = opts.view_as(DebugOptions)
    container = worker.sdk_container_image or debug.lookup_experiment(
        "worker_harness_container_image"
    )
    if container or setup.extra_packages or setup.setup_file:
        return []  # the image (deploy/Dockerfile) or the given package carries the project
    return [f"--extra_package={build_wheel()}"]


def project_wheel(dest: str | None = None) -> str:
    """Build this checkout's wheel (no dependencies, no network) and return its path."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise UserError(
            "cropaudit is not running from a source checkout, so its wheel cannot be built: "
            "pass --sdk_container_image (deploy/Dockerfile) or --extra_package=WHEEL"
        )
    dest = dest or tempfile.mkdtemp(prefix="cropaudit-wheel-")
    with tempfile.TemporaryDirectory(prefix="cropaudit-src-") as src:
        # build from a copy: setuptools writes build/ and *.egg-info beside the sources
        shutil.copytree(root, src, dirs_exist_ok=True, ignore=_NOT_SOURCES)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        done = subprocess.run([*cmd, "-w", dest, src], capture_output=True, text=True)
    wheels = sorted(Path(dest).glob("cropaudit-*.whl"))
    if done.returncode or not wheels:
        raise UserError(f"building the cropaudit wheel failed:\n{done.stderr.strip()}")
    return str(wheels[-1])
