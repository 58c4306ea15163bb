"""``cropaudit explore RUN [--stats DIR] [--host 127.0.0.1] [--port N]``."""

from __future__ import annotations

import argparse

from cropaudit.commands import options as o

DEFAULT_PORT = 8765


def run(args: argparse.Namespace) -> int:
    from cropaudit.errors import UserError

    try:
        from cropaudit.explore.app import Explorer, serve
    except ModuleNotFoundError as exc:
        raise UserError(
            f"cropaudit explore needs {exc.name}: pip install 'cropaudit[explore]'"
        ) from None
    if not 0 <= args.port <= 65535:
        raise UserError("--port must be 0..65535")
    explorer = Explorer.open(
        args.run_dir, args.stats, trust_modified=args.trust_modified, replicates=args.replicates
    )
    for warning in explorer.inputs.warnings:
        print(f"cropaudit explore: warning: {warning}")
    serve(explorer, args.host, args.port)
    return 0


COMMAND = o.Command(
    "explore",
    "browse a finished run in a local web page: estimates, composites, every cropper",
    (
        o.arg("run_dir", metavar="RUN", help="finished run directory (_SUCCESS) or demo folder"),
        o.arg("--stats", metavar="DIR", help="output directory of `cropaudit stats`"),
        o.arg(
            "--host",
            default="127.0.0.1",
            help="address to listen on (default 127.0.0.1, this machine only)",
        ),
        o.arg("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"),
        o.replicates("bootstrap replicates when estimates have to be computed (default 1000)"),
        o.TRUST_MODIFIED,
    ),
    run,
    description="Serve a read-only web page about the finished run RUN: its estimates "
    "(filter, sort, intervals) and findings; an estimate's composites, paged and filtered, "
    "queried in DuckDB over the run's Parquet; a composite, or an image dropped on the page, "
    "cropped by every cropper of the run. Estimates come from --stats DIR, else the statistics "
    "output beside the run, else they are computed now (not kept), as for `cropaudit report`. "
    "Nothing is written into the run.",
)
