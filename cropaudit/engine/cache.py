"""Where the fetched engines (Flink, Spark) live and whether they are complete: read-only,
never downloads.

``make flink-engine`` (:mod:`cropaudit.engine.fetch_engines`) fills the cache once; runner
profiles and the local cluster only look here, so nothing reaches the network while a job runs. The
folder is ``$CROPAUDIT_ENGINE_DIR``, else ``~/.cache/cropaudit/engine``; a ``READY`` file, written
last, holds the sha256 of the lock file every jar was checked against.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

ENGINE_DIR_ENV = "CROPAUDIT_ENGINE_DIR"
DEFAULT_ENGINE_DIR = os.path.join("~", ".cache", "cropaudit", "engine")

#: The Beam release of the job server; the Python SDK is pinned to the same (pyproject.toml).
BEAM_VERSION = "2.70.0"
#: The Flink release of the local cluster; its minor must be the runner's (beam-runners-flink-1.19).
FLINK_VERSION = "1.19.3"
FLINK_MINOR = FLINK_VERSION.rsplit(".", 1)[0]
#: The Spark release whose jars (from ``pyspark``) run inside the Spark job server: the one
#: beam-runners-spark-3 2.70.0 is built against (its POM's Spark 3.5.0, Scala 2.12).
SPARK_VERSION = "3.5.0"

READY = "READY"


@dataclass(frozen=True)
class JobServer:
    """One Beam job server in the cache: its folder name and its driver class."""

    folder: str
    main: str


JOB_SERVERS = {
    "flink": JobServer(
        f"beam-flink-{FLINK_MINOR}-job-server-{BEAM_VERSION}",
        "org.apache.beam.runners.flink.FlinkJobServerDriver",
    ),
    "spark": JobServer(
        f"beam-spark-3-job-server-{BEAM_VERSION}",
        "org.apache.beam.runners.spark.SparkJobServerDriver",
    ),
}


def engine_dir(path: str | os.PathLike | None = None) -> Path:
    """The engine cache: the argument, else ``$CROPAUDIT_ENGINE_DIR``, else the default."""
    return Path(os.path.expanduser(path or os.environ.get(ENGINE_DIR_ENV) or DEFAULT_ENGINE_DIR))


def job_server_dir(root: Path, runner: str = "flink") -> Path:
    return root / JOB_SERVERS[runner].folder


def job_server_jar(root: Path, runner: str = "flink") -> Path:
    """The launcher jar: no classes, a manifest naming ``lib/*.jar`` and the driver class, so it
    runs as ``java -jar`` and passes as Beam's ``--flink_job_server_jar`` (``--spark_...``)."""
    return job_server_dir(root, runner) / "job-server.jar"


def flink_home(root: Path) -> Path:
    """Flink's ``lib/`` and ``bin/`` jars, from the ``apache-flink-libraries`` distribution."""
    return root / f"flink-{FLINK_VERSION}"


def spark_home(root: Path) -> Path:
    """Spark's ``jars/``, from the ``pyspark`` source distribution."""
    return root / f"spark-{SPARK_VERSION}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing(root: Path | None = None) -> str | None:
    """Why the engine cannot be used (one line), or ``None`` when it is fetched and verified."""
    root = root or engine_dir()
    if not (root / READY).is_file():
        return f"the Flink/Spark engine is not in {root}: run `make flink-engine` first"
    return None


def find_job_server_jar(root: Path | None = None, runner: str = "flink") -> Path | None:
    """The cached, verified launcher jar of ``runner``'s job server, or ``None``."""
    root = root or engine_dir()
    jar = job_server_jar(root, runner)
    return jar if missing(root) is None and jar.is_file() else None
