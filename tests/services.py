"""Local services the slow tests start (GCS emulator, Beam job service, worker pool): ports,
readiness and teardown, plus a canonical form of estimates tables for comparing two runs."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from cropaudit.engine.flink_local import free_port  # noqa: F401 - one free-port helper


def wait_for_port(port: int, proc: subprocess.Popen, deadline: float, log: Path) -> None:
    """Return once ``port`` accepts connections; fail with the log's tail if ``proc`` exits or
    ``deadline`` (``time.monotonic()``) passes first."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} not ready in time:\n{log.read_text()[-3000:]}")


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a service started with ``start_new_session=True`` and everything it started (its
    process group): SIGTERM, then SIGKILL, then SIGKILL for children that outlived it."""
    gone = (ProcessLookupError, PermissionError)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(*gone):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(*gone):
        os.killpg(proc.pid, signal.SIGKILL)


#: Seconds a service started by :func:`services_running` may take to listen.
START_TIMEOUT_S = 120


def worker_pool_command(port: int) -> list[str]:
    """Beam's SDK worker pool (EXTERNAL environment) on ``port``."""
    return [
        sys.executable,
        "-m",
        "apache_beam.runners.worker.worker_pool_main",
        f"--service_port={port}",
    ]


@contextlib.contextmanager
def services_running(commands: dict[str, tuple[list[str], int]], logs: Path) -> Iterator[None]:
    """Start each ``name: (command, port)`` as its own process group, logging to
    ``logs/NAME.log``; yield once every port listens, stop them all afterwards. The SDK worker
    pool starts workers as ``python`` from PATH: that is made this interpreter."""
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    procs: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        for name, (cmd, _) in commands.items():
            with open(logs / f"{name}.log", "wb") as out:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        env=env,
                        cwd=logs,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # own process group: killed as a whole
                    )
                )
        for proc, (name, (_, port)) in zip(procs, commands.items()):
            wait_for_port(port, proc, deadline, logs / f"{name}.log")
        yield
    finally:
        for proc in procs:
            stop_group(proc)


class _FileHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_bytes(body: bytes) -> Iterator[http.server.ThreadingHTTPServer]:
    """A loopback HTTP server answering every GET with ``body``; ``.requests`` lists the paths
    asked for, ``.server_address`` is ``(host, port)``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
    httpd.body, httpd.requests = body, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def tiny_config(manifest: Path, name: str):
    """The embedded demo cut to one composite per pair and no controls (12 composites)."""
    from cropaudit.pipelines.demo_pipeline import embedded_config

    return embedded_config().replace(
        name=name,
        design={"composites_per_pair": 1, "controls": []},
        manifest={"path": str(manifest)},
    )


def manifest_headers(raw: bytes) -> dict[str, str]:
    """A jar manifest's headers, continuation lines joined."""
    text = raw.decode().replace("\r\n ", "").replace("\r\n", "\n")
    return dict(line.split(": ", 1) for line in text.splitlines() if line)


def manifest_class_path(raw: bytes) -> tuple[str, list[str]]:
    """(``Main-Class``, ``Class-Path`` entries) of a jar manifest."""
    headers = manifest_headers(raw)
    return headers["Main-Class"], headers["Class-Path"].split()


def canonical_estimates(table: pa.Table) -> pa.Table:
    """An estimates table without file metadata, rows in key order: equal estimates, equal
    tables."""
    from cropaudit.schemas.estimates import KEY_FIELDS

    table = table.replace_schema_metadata(None)
    return table.sort_by([(k, "ascending") for k in KEY_FIELDS]).combine_chunks()


def estimates_by_runner(root: Path, runners: dict[str, list[str] | None]) -> dict[str, pa.Table]:
    """The statistics stage over ``root/NAME`` (a run) on each runner's Beam options, as
    canonical estimates: runners that agree give equal tables."""
    import pyarrow.parquet as pq

    from cropaudit.pipelines.stats_pipeline import run_stats

    out = {}
    for name, args in runners.items():
        path = run_stats(
            [str(root / name)],
            str(root / f"stats_{name}"),
            replicates=50,
            seed=7,
            pipeline_args=args,
            render=False,
        )
        out[name] = canonical_estimates(pq.read_table(path))
    return out
