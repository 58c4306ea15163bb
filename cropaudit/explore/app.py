"""The explorer's web application: a Starlette app over one finished run, read-only.

Starlette (with uvicorn as its server) because the app is a handful of JSON routes, a static
folder and one streamed upload: Starlette gives exactly that, in a small, typed, actively kept
library whose test client and server are the same ASGI app, with no template engine, ORM or
form machinery to carry. Routes:

- ``GET /``: the page (``static/index.html``); ``GET /static/...``: its script and style.
- ``GET /api/run``: the run, its warnings, where the estimates came from, the findings.
- ``GET /api/estimates``: the estimates table (one row per stratum; small).
- ``GET /api/composites?...``: one page of an estimate's composites (:mod:`.composites`).
- ``GET /api/composite?id=...``: a composite re-rendered, every cropper's panel and row.
- ``POST /api/crop``: an image (the request body, at most :data:`UPLOAD_LIMIT` bytes) cropped
  by every cropper; decoded in memory, never stored.

Nothing is written anywhere: the run is only read, and DuckDB runs in memory. On loopback the
app answers only requests addressed to a loopback name (a DNS-rebinding page cannot read it);
every response forbids framing and outside scripts (``Content-Security-Policy``), and uploads
must say they are images, so a cross-site form cannot post one.
"""

from __future__ import annotations

import functools
import ipaddress
import sys
import threading
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cropaudit.errors import UserError
from cropaudit.explore.composites import Comparison, PageQuery, SurvivalQueries
from cropaudit.explore.drawing import Croppers, as_json, draw_composite, draw_upload
from cropaudit.explore.estimate_table import estimate_rows, finding_lines, jsonable
from cropaudit.report.inputs import RunInputs, attach_estimates, load_run
from cropaudit.schemas.records import Face
from cropaudit.transforms.images import ImageError
from cropaudit.transforms.manifests import load_faces

#: The largest upload accepted, in bytes (the decoder's own limits apply after it).
UPLOAD_LIMIT = 16 << 20
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = ("cropaudit.explore", "static")


@dataclass
class Explorer:
    """One finished run, opened for exploring: its inputs (estimates attached), the queries
    over its survival table, its croppers and its manifest's faces."""

    inputs: RunInputs
    queries: SurvivalQueries
    croppers: Croppers
    faces: dict[str, Face]
    #: Why composites cannot be re-rendered (the manifest could not be read), else "".
    faces_problem: str = ""

    @classmethod
    def open(
        cls,
        run_dir: str,
        stats_dir: str | None = None,
        *,
        trust_modified: bool = False,
        replicates: int = 1000,
        quiet: bool = False,
    ) -> Explorer:
        """Verifies and reads the run as ``cropaudit report`` does (``UserError`` for an
        unfinished run, or a modified one unless ``trust_modified``: then a warning)."""
        inputs = load_run(run_dir, trust_modified)
        if inputs.single is not None:
            raise UserError(f"{run_dir} is a single-image run; explore shows pair runs")
        if inputs.run.root.startswith("gs://"):
            raise UserError("explore reads local runs; copy the run folder here first")
        attach_estimates(inputs, stats_dir, replicates=replicates, quiet=quiet)
        config = inputs.config
        queries = SurvivalQueries(
            inputs.run.table_files(inputs.run.survival_name), config.crop.aspect_ratios
        )
        uri = inputs.summary.get("manifest") or config.manifest.path
        try:
            faces, problem = {f.image_id: f for f in load_faces(uri, config)[0]}, ""
        except Exception as exc:  # noqa: BLE001 - the tables are still worth exploring
            faces, problem = {}, f"manifest {uri} could not be read ({exc}): no re-rendering"
        return cls(inputs, queries, Croppers(config), faces, problem)

    @functools.cached_property
    def info(self) -> dict:
        """What ``/api/run`` answers (the findings computed once)."""
        items, note = finding_lines(self.inputs)
        survival = self.inputs.survival
        warnings = list(self.inputs.warnings)
        if self.faces_problem:
            warnings.append(self.faces_problem)
        return {
            "run_dir": self.inputs.run_dir,
            "config": self.inputs.config.name,
            "croppers": sorted(set(survival["model_name"])),
            "rows": len(survival),
            "stats_source": self.inputs.stats_source,
            "warnings": warnings,
            "findings": items,
            "findings_note": note,
            "aspect_ratios": list(self.croppers.ratios),
        }

    def warm_up(self) -> threading.Thread:
        """Loads every cropper in the background, so the first composite comes sooner."""

        def load():
            for spec in self.croppers.specs():
                try:
                    self.croppers.loaded(spec)
                except Exception as exc:  # noqa: BLE001 - the request that needs it says why
                    print(f"cropaudit explore: {spec}: {exc}", file=sys.stderr)

        thread = threading.Thread(target=load, name="cropaudit-explore-warm-up", daemon=True)
        thread.start()
        return thread


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _optional(params, name: str, parse=str):
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return parse(value)
    except ValueError:
        raise UserError(f"{name}: {value!r} is not a valid value") from None


def _comparison(params) -> Comparison:
    names = {
        "model_name": "model",
        "variant": "variant",
        "design": "design",
        "criterion": "criterion",
        "comparison": "comparison",
        "group_a": "ga",
        "group_b": "gb",
    }
    missing = [q for q in names.values() if not params.get(q)]
    if missing:
        raise UserError(f"missing query parameters: {', '.join(missing)}")
    return Comparison(**{field: params[q] for field, q in names.items()})


def _page_query(params) -> PageQuery:
    return PageQuery(
        outcome=_optional(params, "outcome"),
        position=_optional(params, "position"),
        margin_min=_optional(params, "mmin", float),
        margin_max=_optional(params, "mmax", float),
        order=_optional(params, "order") or "margin",
        offset=_optional(params, "offset", int) or 0,
        limit=_optional(params, "limit", int) or 50,
    )


def create_app(explorer: Explorer, host: str = "127.0.0.1") -> Starlette:
    """The ASGI app serving ``explorer``; ``host``: the address it is bound to (on loopback,
    only requests addressed to a loopback name are answered)."""

    def as_json_response(payload) -> JSONResponse:
        return JSONResponse(jsonable(payload))

    async def index(request: Request) -> Response:
        from importlib import resources

        page = resources.files(STATIC[0]).joinpath(STATIC[1], "index.html")
        with resources.as_file(page) as path:
            return FileResponse(path, media_type="text/html")

    async def run_info(request: Request) -> Response:
        return as_json_response(explorer.info)

    async def estimates(request: Request) -> Response:
        return as_json_response({"rows": estimate_rows(explorer.inputs.estimates)})

    def composites(request: Request) -> Response:
        page = explorer.queries.page(
            _comparison(request.query_params), _page_query(request.query_params)
        )
        return as_json_response({"total": page.total, "rows": page.rows})

    def composite(request: Request) -> Response:
        cid = request.query_params.get("id", "")
        rows = explorer.queries.siblings(cid)
        if not rows:
            return _error(404, f"no composite {cid!r} in this run")
        if explorer.faces_problem:
            return _error(409, explorer.faces_problem)
        drawn = draw_composite(rows, explorer.croppers, explorer.faces)
        return as_json_response({"id": cid, "rows": rows, **as_json(drawn)})

    async def crop(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (kind.startswith("image/") or kind == "application/octet-stream"):
            return _error(415, "send the image itself as the body, with an image/* type")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > UPLOAD_LIMIT:
            return _error(413, f"the image is over the {UPLOAD_LIMIT >> 20} MiB upload limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > UPLOAD_LIMIT:
                return _error(413, f"the image is over the {UPLOAD_LIMIT >> 20} MiB upload limit")
            chunks.append(chunk)
        try:
            drawn = await run_in_threadpool(draw_upload, b"".join(chunks), explorer.croppers)
        except ImageError as exc:
            return _error(422, f"{exc.reason}: {exc.detail}", reason=exc.reason)
        return as_json_response(as_json(drawn))

    async def user_error(request: Request, exc: UserError) -> Response:
        return _error(400, str(exc))

    async def secure(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    loopback = is_loopback(host)
    hosts = [*LOOPBACK_NAMES, "[::1]"] if loopback else ["*"]
    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/run", run_info),
            Route("/api/estimates", estimates),
            Route("/api/composites", composites),
            Route("/api/composite", composite),
            Route("/api/crop", crop, methods=["POST"]),
            Mount("/static", StaticFiles(packages=[STATIC]), name="static"),
        ],
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
            Middleware(BaseHTTPMiddleware, dispatch=secure),
        ],
        exception_handlers={UserError: user_error},
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_notice(host: str) -> str | None:
    """The one line said when ``host`` is not a loopback address (None when it is)."""
    if is_loopback(host):
        return None
    return (
        f"cropaudit explore: listening on {host}, not loopback: anyone who can reach it can "
        "read this run, its images and its croppers' decisions"
    )


def serve(explorer: Explorer, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve ``explorer`` until interrupted (:func:`exposure_notice` first, where it
    applies)."""
    import uvicorn

    notice = exposure_notice(host)
    if notice:
        print(notice, file=sys.stderr)
    explorer.warm_up()
    shown = f"[{host}]" if ":" in host else host
    print(f"cropaudit explore: {explorer.inputs.run_dir} at http://{shown}:{port}/ (Ctrl-C stops)")
    sys.stdout.flush()
    config = uvicorn.Config(
        create_app(explorer, host), host=host, port=port, log_level="warning", access_log=False
    )
    uvicorn.Server(config).run()


__all__ = ["UPLOAD_LIMIT", "Explorer", "create_app", "exposure_notice", "serve"]
