"""``python -m cropaudit.engine.fetch_engines`` (``make flink-engine``): fetch the engines once,
by exact coordinates, and check every file's sha256 against the committed lock before anything uses
it.

- Beam's Flink and Spark job servers: the Maven closures of
  ``deploy/engine/{flink,spark}-job-server.pom.xml`` (Maven Central serves the runners, not the
  ``*-job-server`` jars, at the SDK's version), copied by ``mvn dependency:copy-dependencies``;
  a manifest-only launcher jar per job server names those jars.
- Flink itself: the ``apache-flink-libraries`` source distribution from PyPI (``pip download``;
  its ``deps/lib`` and ``deps/bin`` jars). Never ``pip install apache-flink``: it pins another
  Beam.
- Spark itself: the ``pyspark`` source distribution (its ``deps/jars``), which the Spark job
  server runs in-process (``--spark-master-url local[N]``) or as a client of a Spark master.
  Never ``pip install pyspark`` into the project: only its jars are used.

``deploy/engine/engine.sha256`` lists ``sha256  path`` for every file (paths relative to the
cache); a missing, extra or changed file stops the step and no ``READY`` is written.
``--update-lock`` rewrites the lock instead (after a deliberate version change).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cropaudit.engine.cache import (
    FLINK_VERSION,
    JOB_SERVERS,
    READY,
    SPARK_VERSION,
    engine_dir,
    flink_home,
    job_server_dir,
    job_server_jar,
    sha256_file,
    spark_home,
)
from cropaudit.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SPEC = ROOT / "deploy" / "engine"
LOCK = ENGINE_SPEC / "engine.sha256"


@dataclass(frozen=True)
class Distribution:
    """An engine's own jars, from a PyPI source archive: the members to keep (``deps/`` is
    dropped from their names) and the folder they go to."""

    requirement: str
    archive: str  # glob of the downloaded archive
    members: tuple[str, ...]
    home: Callable[[Path], Path]


DISTRIBUTIONS = (
    # the cluster's runtime jars and the TaskManager's resource calculator
    Distribution(
        f"apache-flink-libraries=={FLINK_VERSION}",
        "apache*flink*libraries-*.tar.gz",
        ("deps/lib/", "deps/bin/bash-java-utils.jar"),
        flink_home,
    ),
    Distribution(f"pyspark=={SPARK_VERSION}", "pyspark-*.tar.gz", ("deps/jars/",), spark_home),
)
#: Spark jars the Spark job server's class path leaves out: Spark's Guava 14 would shadow the
#: Guava 33 that Beam's GCP options need at start-up (NoSuchMethodError in Preconditions).
SPARK_LEFT_OUT = ("guava-14.0.1.jar",)
#: Java 17 keeps these JDK packages closed; Spark reaches into them (``java -jar`` reads them
#: from the launcher's manifest, so no ``--add-opens`` flags are needed).
SPARK_ADD_OPENS = tuple(
    f"java.base/{package}"
    for package in (
        "java.io",
        "java.lang",
        "java.lang.invoke",
        "java.lang.reflect",
        "java.net",
        "java.nio",
        "java.util",
        "java.util.concurrent",
        "java.util.concurrent.atomic",
        "sun.nio.ch",
        "sun.nio.cs",
        "sun.security.action",
        "sun.util.calendar",
    )
)


def pom(runner: str) -> Path:
    return ENGINE_SPEC / f"{runner}-job-server.pom.xml"


def run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        tail = (done.stdout + done.stderr).strip()[-3000:]
        raise UserError(f"{what} failed ({' '.join(cmd[:3])} ...):\n{tail}")


def fetch_job_server(root: Path, runner: str) -> None:
    """The job server's jars into ``lib/`` (replaced as a whole)."""
    if shutil.which("mvn") is None:
        raise UserError(f"Maven (mvn) is needed to fetch the {runner} job server; install it")
    lib = job_server_dir(root, runner) / "lib"
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        goal = "dependency:copy-dependencies"
        cmd = ["mvn", "-B", "-q", "-f", str(pom(runner)), goal, "-DincludeScope=runtime"]
        run([*cmd, f"-DoutputDirectory={tmp}/lib"], "Maven")
        shutil.rmtree(lib, ignore_errors=True)
        lib.parent.mkdir(parents=True, exist_ok=True)
        Path(tmp, "lib").rename(lib)


def fetch_distribution(root: Path, dist: Distribution) -> None:
    """The source archive into ``downloads/`` (once), its jars into the engine's home."""
    downloads = root / "downloads"
    if not list(downloads.glob(dist.archive)):
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads)]
        run([*pip, "--no-binary", ":all:", dist.requirement], "pip download")
    (archive,) = downloads.glob(dist.archive)
    home = dist.home(root)
    shutil.rmtree(home, ignore_errors=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]  # drop the top folder
            if member.isfile() and name.startswith(dist.members):
                member.name = name.removeprefix("deps/")
                tar.extract(member, home, filter="data")


def lock_entries(root: Path) -> dict[str, str]:
    """``{path relative to the cache: sha256}`` of everything fetched."""
    libs = [job_server_dir(root, runner) / "lib" for runner in JOB_SERVERS]
    files = [*(jar for lib in libs for jar in lib.glob("*.jar")), *(root / "downloads").glob("*")]
    return {str(f.relative_to(root)): sha256_file(f) for f in sorted(files)}


def read_lock(path: Path = LOCK) -> dict[str, str]:
    pairs = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip(): digest for digest, name in pairs}


def check(got: dict[str, str], want: dict[str, str]) -> None:
    """``UserError`` naming every missing, unexpected or changed file."""
    problems = [f"missing {name}" for name in sorted(want.keys() - got.keys())]
    problems += [f"not in the lock: {name}" for name in sorted(got.keys() - want.keys())]
    problems += [
        f"sha256 mismatch: {name}"
        for name in sorted(got.keys() & want.keys())
        if got[name] != want[name]
    ]
    if problems:
        raise UserError(f"the fetched engine does not match {LOCK.name}: " + "; ".join(problems))


def manifest_header(name: str, values: list[str]) -> list[str]:
    """``name: v1 v2 ...`` as manifest lines: at most 72 bytes each, a continuation line starts
    with one space (ASCII: file and package names)."""
    header = f"{name}: {' '.join(values)}"
    return [header[:72]] + [" " + header[i : i + 71] for i in range(72, len(header), 71)]


def write_launcher(root: Path, runner: str = "flink") -> Path:
    """A jar holding only a manifest: ``Main-Class`` and a ``Class-Path`` of ``lib/*.jar`` (for
    Spark, then Spark's own jars and the JDK packages it must open)."""
    jar = job_server_jar(root, runner)
    class_path = [f"lib/{p.name}" for p in sorted((jar.parent / "lib").glob("*.jar"))]
    opens = []
    if runner == "spark":
        jars = spark_home(root) / "jars"
        class_path += [
            f"../{jars.parent.name}/jars/{p.name}"
            for p in sorted(jars.glob("*.jar"))
            if p.name not in SPARK_LEFT_OUT
        ]
        opens = manifest_header("Add-Opens", list(SPARK_ADD_OPENS))
    main = f"Main-Class: {JOB_SERVERS[runner].main}"
    manifest = ["Manifest-Version: 1.0", main, *manifest_header("Class-Path", class_path)]
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "\r\n".join([*manifest, *opens, "", ""]))
    return jar


def fetch(root: Path, update_lock: bool = False) -> Path:
    """Fetch, verify and mark ready; returns the launcher jar."""
    ready = root / READY
    if not update_lock and ready.is_file() and ready.read_text().strip() == sha256_file(LOCK):
        return job_server_jar(root)  # fetched and verified against this very lock
    root.mkdir(parents=True, exist_ok=True)
    ready.unlink(missing_ok=True)
    for runner in JOB_SERVERS:
        fetch_job_server(root, runner)
    for dist in DISTRIBUTIONS:
        fetch_distribution(root, dist)
    got = lock_entries(root)
    if update_lock:
        LOCK.write_text("".join(f"{digest}  {name}\n" for name, digest in got.items()))
    check(got, read_lock())
    jars = [write_launcher(root, runner) for runner in JOB_SERVERS]
    ready.write_text(sha256_file(LOCK) + "\n")
    return jars[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cropaudit.engine.fetch_engines", description=__doc__
    )
    parser.add_argument("--dir", help="engine cache (default $CROPAUDIT_ENGINE_DIR or ~/.cache)")
    parser.add_argument("--update-lock", action="store_true", help="rewrite the sha256 lock")
    args = parser.parse_args(argv)
    try:
        jar = fetch(engine_dir(args.dir), update_lock=args.update_lock)
    except UserError as exc:
        print(f"cropaudit: error: {exc}", file=sys.stderr)
        return 2
    root = jar.parents[1]
    print(f"Flink engine ready: job server {jar}, Flink {flink_home(root)}")
    print(
        f"Spark engine ready: job server {job_server_jar(root, 'spark')}, Spark {spark_home(root)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
