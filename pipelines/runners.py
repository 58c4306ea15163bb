"""Runner profiles: the same pipeline on the local runner, a portable job service, Dataflow or
Flink, chosen by name and always pinned explicitly.

Beam 2.77's ``DirectRunner`` first tries to download and start the Prism binary and silently
falls back when it can't; ``direct`` here is the FnApiRunner the fallback would pick, started
directly (``--direct_num_workers``/``--direct_running_mode=multi_processing`` still apply).
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineRunner

from cropaudit.errors import UserError

RUNNERS = ("direct", "portable", "dataflow", "flink")


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
    raise UserError(f"unknown runner {name!r}; use one of {RUNNERS}")


def pipeline_options(pipeline_args: list[str] | None) -> tuple[str, PipelineOptions]:
    """Split ``--runner NAME`` from the Beam options; the default is ``direct``."""
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
    return runner, PipelineOptions(args)
