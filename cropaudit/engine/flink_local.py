"""A standalone Flink session cluster on this machine, from the fetched engine (no download):
one JobManager and one TaskManager as separate JVMs, plus Beam's SDK worker pool beside the
TaskManager (what a Kubernetes pod's sidecar would be), every port a free loopback port.

``python -m cropaudit.engine.flink_local start|stop|status [--dir DIR]`` (``deploy/flink-local.sh``
wraps it). Everything lives under the cluster folder: ``conf/config.yaml``, ``log/``, and
``cluster.json`` with the addresses and each process's pid and start time, so ``stop`` ends
exactly the processes ``start`` began (a recycled pid is left alone).

Pipelines reach it with ``--runner flink --flink_master localhost:REST_PORT
--environment_type EXTERNAL --environment_config localhost:POOL_PORT``: the TaskManager asks the
pool for SDK workers, which run as separate Python processes with cropaudit installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cropaudit.engine.cache import engine_dir, flink_home, missing
from cropaudit.errors import UserError

STATE = "cluster.json"
START_TIMEOUT_S = 120
#: Milliseconds between TaskManager heartbeats and until a silent one counts as lost. A killed
#: TaskManager is noticed after two refused heartbeats (``heartbeat.rpc-failure-threshold``), so
#: in seconds; the timeout only covers a live one that stalls (GC, a loaded machine: 6 s was
#: too short on the 2-core CI machine under load).
HEARTBEAT_MS = (2000, 30000)
JOBMANAGER_MAIN = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
TASKMANAGER_MAIN = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
RESOURCE_UTIL = "org.apache.flink.runtime.util.bash.BashJavaUtils"

LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FileAppender
appender.file.name = FileAppender
appender.file.type = FILE
appender.file.fileName = ${sys:log.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-60c %x - %m%n
"""


@dataclass(frozen=True)
class Cluster:
    """A started cluster's addresses, as pipeline options want them."""

    folder: Path
    flink_master: str
    worker_pool: str

    def pipeline_args(self, parallelism: int = 2) -> list[str]:
        return [
            "--runner=flink",
            f"--flink_master={self.flink_master}",
            f"--parallelism={parallelism}",
            "--environment_type=EXTERNAL",
            f"--environment_config={self.worker_pool}",
        ]


def default_folder() -> Path:
    return engine_dir() / "local-cluster"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home, "bin", "java")) if home else shutil.which("java")
    if not found or not Path(found).exists():
        raise UserError("Java 11 or newer is needed for Flink: install a JRE or set JAVA_HOME")
    return found


def flink_config(slots: int, rpc_port: int, rest_port: int, restart_attempts: int) -> str:
    interval, timeout = HEARTBEAT_MS
    settings = {
        "jobmanager.rpc.address": "localhost",
        "jobmanager.rpc.port": rpc_port,
        "jobmanager.bind-host": "localhost",
        "jobmanager.memory.process.size": "1024m",
        "taskmanager.host": "localhost",
        "taskmanager.bind-host": "localhost",
        "taskmanager.numberOfTaskSlots": slots,
        "taskmanager.memory.process.size": "1536m",
        # Beam's batch translation shuffles between many operators: more network buffers than
        # Flink's default 10 %, less managed (sort) memory than its 40 %
        "taskmanager.memory.network.min": "320m",
        "taskmanager.memory.network.max": "320m",
        "taskmanager.memory.managed.fraction": 0.2,
        "rest.address": "localhost",
        "rest.bind-address": "localhost",
        "rest.port": rest_port,
        "parallelism.default": 1,
        "heartbeat.interval": interval,
        "heartbeat.timeout": timeout,
        # a lost TaskManager fails every task it ran, each a separate region failure that
        # counts against the restart budget; restarting the whole job makes one loss one
        # restart, and reruns Beam's sink finalisation once, after the whole graph
        "jobmanager.execution.failover-strategy": "full",
        "restart-strategy.type": "fixed-delay" if restart_attempts else "none",
        "restart-strategy.fixed-delay.attempts": restart_attempts,
        "restart-strategy.fixed-delay.delay": "2 s",
    }
    return "".join(f"{key}: {value}\n" for key, value in settings.items())


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (``/proc``), or ``None`` when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _spawn(name: str, cmd: list[str], folder: Path, env: dict | None = None) -> dict:
    log = folder / "log" / f"{name}.out"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop ends it and its children
        )
    return {"pid": proc.pid, "start_time": _start_time(proc.pid)}


def _java_cmd(home: Path, folder: Path, name: str, jvm: list[str], main: str) -> list[str]:
    return [
        java(),
        *jvm,
        f"-Dlog.file={folder / 'log' / f'{name}.log'}",
        f"-Dlog4j.configurationFile=file:{folder / 'conf' / 'log4j.properties'}",
        "-cp",
        f"{home / 'lib'}/*",
        main,
        "--configDir",
        str(folder / "conf"),
    ]


def _taskmanager_cmd(home: Path, folder: Path) -> list[str]:
    """The TaskManager's command with the memory flags Flink's start scripts would compute."""
    util = [java(), "-cp", f"{home / 'bin' / 'bash-java-utils.jar'}:{home / 'lib'}/*"]
    done = subprocess.run(
        [*util, RESOURCE_UTIL, "GET_TM_RESOURCE_PARAMS", "--configDir", str(folder / "conf")],
        capture_output=True,
        text=True,
    )
    marker = "BASH_JAVA_UTILS_EXEC_RESULT:"
    results = [line[len(marker) :] for line in done.stdout.splitlines() if line.startswith(marker)]
    if done.returncode or len(results) < 2:
        raise UserError(f"Flink's TaskManager resource calculation failed:\n{done.stdout[-2000:]}")
    jvm, dynamic = results[-2].split(), results[-1].split()
    return [*_java_cmd(home, folder, "taskmanager", jvm, TASKMANAGER_MAIN), *dynamic]


def read_state(folder: Path) -> dict | None:
    path = folder / STATE
    return json.loads(path.read_text()) if path.is_file() else None


def _write_state(folder: Path, state: dict) -> None:
    tmp = folder / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(folder / STATE)


def alive(proc: dict) -> bool:
    """Still the process that was started (same pid and start time)?"""
    return proc.get("start_time") is not None and _start_time(proc["pid"]) == proc["start_time"]


def overview(flink_master: str, timeout: float = 2) -> dict | None:
    """The REST ``/overview`` (TaskManagers, slots, Flink version), or ``None``."""
    try:
        with urllib.request.urlopen(f"http://{flink_master}/overview", timeout=timeout) as r:
            return json.load(r)
    except OSError:
        return None


def taskmanager_ids(flink_master: str) -> set[str]:
    """The ids of the TaskManagers registered with the JobManager (REST ``/taskmanagers``)."""
    try:
        with urllib.request.urlopen(f"http://{flink_master}/taskmanagers", timeout=2) as r:
            return {tm["id"] for tm in json.load(r)["taskmanagers"]}
    except OSError:
        return set()


def _wait_ready(state: dict, slots: int, folder: Path, replaced: set[str] | None = None) -> None:
    """Until one TaskManager with ``slots`` slots is registered (not one of ``replaced``, the
    ids known before a restart) and the worker pool answers. A fresh cluster also waits for its
    slots to be free; a restarted TaskManager's slots may already be taken by a recovering
    job."""
    deadline = time.monotonic() + START_TIMEOUT_S
    pool_port = int(state["worker_pool"].rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        dead = [name for name, proc in state["processes"].items() if not alive(proc)]
        if dead:
            raise UserError(f"Flink cluster: {', '.join(dead)} exited; see {folder / 'log'}")
        if replaced is not None:
            ids = taskmanager_ids(state["flink_master"])
            ready = len(ids) == 1 and not ids & replaced
        else:
            seen = overview(state["flink_master"]) or {}
            ready = seen.get("taskmanagers") == 1 and seen.get("slots-available") == slots
        if ready:
            with contextlib.suppress(OSError), socket.create_connection(("localhost", pool_port)):
                return
        time.sleep(0.5)
    raise UserError(f"Flink cluster not ready after {START_TIMEOUT_S} s; see {folder / 'log'}")


def start(
    folder: Path | None = None,
    slots: int = 2,
    restart_attempts: int = 0,
    engine: Path | None = None,
) -> Cluster:
    """Start JobManager, TaskManager and worker pool; return once all answer."""
    folder = Path(folder or default_folder()).resolve()
    engine = engine or engine_dir()
    reason = missing(engine)
    if reason:
        raise UserError(reason)
    state = read_state(folder)
    if state and any(alive(p) for p in state["processes"].values()):
        raise UserError(f"a Flink cluster already runs from {folder}; stop it first")
    home = flink_home(engine)
    for sub in ("conf", "log"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rest_port, pool_port = free_port(), free_port()
    conf = flink_config(slots, free_port(), rest_port, restart_attempts)
    (folder / "conf" / "config.yaml").write_text(conf)
    (folder / "conf" / "log4j.properties").write_text(LOG4J)
    # the pool starts SDK workers as `python` from PATH: make that this interpreter
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    pool = [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main"]
    state = {
        "flink_master": f"localhost:{rest_port}",
        "worker_pool": f"localhost:{pool_port}",
        "slots": slots,
        "engine": str(engine),
        "processes": {},
    }
    procs = state["processes"]
    try:
        procs["jobmanager"] = _spawn(
            "jobmanager", _java_cmd(home, folder, "jobmanager", [], JOBMANAGER_MAIN), folder
        )
        procs["taskmanager"] = _spawn("taskmanager", _taskmanager_cmd(home, folder), folder)
        procs["workerpool"] = _spawn(
            "workerpool", [*pool, f"--service_port={pool_port}"], folder, env
        )
        _write_state(folder, state)
        _wait_ready(state, slots, folder)
    except BaseException:
        stop(folder, state)
        raise
    return Cluster(folder, state["flink_master"], state["worker_pool"])


def restart_taskmanager(folder: Path) -> None:
    """Start a new TaskManager for the cluster in ``folder`` after one was lost; return once the
    JobManager has dropped the lost one and registered the new one (its slots may at once go to
    a job that is waiting to restart)."""
    state = read_state(folder)
    if not state:
        raise UserError(f"no Flink cluster in {folder}")
    before = taskmanager_ids(state["flink_master"])
    home = flink_home(Path(state["engine"]))
    state["processes"]["taskmanager"] = _spawn(
        "taskmanager", _taskmanager_cmd(home, folder), folder
    )
    _write_state(folder, state)
    _wait_ready(state, state["slots"], folder, replaced=before)


def signal_process(proc: dict, sig: int) -> bool:
    """Send ``sig`` to the process group of a process we started, if it still is ours."""
    if not alive(proc):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc["pid"], sig)
    return True


def stop(folder: Path | None = None, state: dict | None = None) -> list[str]:
    """End the processes this folder's cluster started (TERM, then KILL after 10 s)."""
    folder = Path(folder or default_folder()).resolve()
    state = state or read_state(folder)
    if not state:
        return []
    stopped = [n for n, p in state["processes"].items() if signal_process(p, signal.SIGTERM)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in state["processes"].values()):
        time.sleep(0.2)
    for proc in state["processes"].values():
        signal_process(proc, signal.SIGKILL)
    (folder / STATE).unlink(missing_ok=True)
    return stopped


def status(folder: Path | None = None) -> dict:
    """Which of the cluster's processes run, and what its REST endpoint reports."""
    folder = Path(folder or default_folder()).resolve()
    state = read_state(folder)
    if not state:
        return {"folder": str(folder), "running": False}
    procs = {name: alive(p) for name, p in state["processes"].items()}
    return {
        "folder": str(folder),
        "running": all(procs.values()),
        "processes": procs,
        "flink_master": state["flink_master"],
        "worker_pool": state["worker_pool"],
        "overview": overview(state["flink_master"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cropaudit.engine.flink_local",
        description="A local Flink session cluster (JobManager, TaskManager, SDK worker pool).",
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", help="cluster folder (default: ENGINE_DIR/local-cluster)")
    parser.add_argument("--slots", type=int, default=2, help="TaskManager slots (2)")
    parser.add_argument(
        "--restart-attempts", type=int, default=0, help="Flink restarts of a failed job (0)"
    )
    args = parser.parse_args(argv)
    folder = Path(args.dir) if args.dir else None
    try:
        if args.action == "start":
            cluster = start(folder, slots=args.slots, restart_attempts=args.restart_attempts)
            # shell-friendly: eval "$(python -m cropaudit.engine.flink_local start)"
            print(f"FLINK_MASTER={cluster.flink_master}")
            print(f"WORKER_POOL={cluster.worker_pool}")
        elif args.action == "stop":
            print("stopped: " + (", ".join(stop(folder)) or "nothing was running"))
        else:
            report = status(folder)
            print(json.dumps(report, indent=2))
            return 0 if report["running"] else 3
    except UserError as exc:
        print(f"cropaudit: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
