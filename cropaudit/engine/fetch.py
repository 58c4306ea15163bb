"""``python -m cropaudit.engine.fetch`` (``make flink-engine``): fetch the engine once, by exact
coordinates, and check every file's sha256 against the committed lock before anything uses it.

- Beam's Flink job server: the Maven closure of ``deploy/engine/flink-job-server.pom.xml``
  (Maven Central serves the runner, not the ``*-job-server`` jar, at the SDK's version), copied by
  ``mvn dependency:copy-dependencies``; a manifest-only launcher jar names those jars.
- Flink itself: the ``apache-flink-libraries`` source distribution from PyPI (``pip download``;
  its ``deps/lib`` and ``deps/bin`` jars). Never ``pip install apache-flink``: it pins another
  Beam.

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
from pathlib import Path

from cropaudit.engine.cache import (
    FLINK_VERSION,
    JOB_SERVER_MAIN,
    READY,
    engine_dir,
    flink_home,
    job_server_dir,
    job_server_jar,
    sha256_file,
)
from cropaudit.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SPEC = ROOT / "deploy" / "engine"
POM = ENGINE_SPEC / "flink-job-server.pom.xml"
LOCK = ENGINE_SPEC / "engine.sha256"
FLINK_DIST = f"apache-flink-libraries=={FLINK_VERSION}"
#: What the cluster needs from the distribution: the runtime jars and the resource calculator.
FLINK_MEMBERS = ("deps/lib/", "deps/bin/bash-java-utils.jar")


def run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        tail = (done.stdout + done.stderr).strip()[-3000:]
        raise UserError(f"{what} failed ({' '.join(cmd[:3])} ...):\n{tail}")


def fetch_job_server(root: Path) -> None:
    """The job server's jars into ``lib/`` (replaced as a whole)."""
    if shutil.which("mvn") is None:
        raise UserError("Maven (mvn) is needed to fetch the Flink job server; install it first")
    lib = job_server_dir(root) / "lib"
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        goal = "dependency:copy-dependencies"
        cmd = ["mvn", "-B", "-q", "-f", str(POM), goal, "-DincludeScope=runtime"]
        run([*cmd, f"-DoutputDirectory={tmp}/lib"], "Maven")
        shutil.rmtree(lib, ignore_errors=True)
        lib.parent.mkdir(parents=True, exist_ok=True)
        Path(tmp, "lib").rename(lib)


def fetch_flink(root: Path) -> None:
    """The Flink distribution's source archive into ``downloads/``, its jars into Flink home."""
    downloads = root / "downloads"
    if not list(downloads.glob("apache*flink*libraries-*.tar.gz")):
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads)]
        run([*pip, FLINK_DIST], "pip download")
    (archive,) = downloads.glob("apache*flink*libraries-*.tar.gz")
    home = flink_home(root)
    shutil.rmtree(home, ignore_errors=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]  # drop the top folder
            if member.isfile() and name.startswith(FLINK_MEMBERS):
                member.name = name.removeprefix("deps/")
                tar.extract(member, home, filter="data")


def lock_entries(root: Path) -> dict[str, str]:
    """``{path relative to the cache: sha256}`` of everything fetched."""
    files = [*(job_server_dir(root) / "lib").glob("*.jar"), *(root / "downloads").glob("*")]
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


def write_launcher(root: Path) -> Path:
    """A jar holding only a manifest: ``Main-Class`` and a ``Class-Path`` of ``lib/*.jar``."""
    jar = job_server_jar(root)
    names = " ".join(f"lib/{p.name}" for p in sorted((jar.parent / "lib").glob("*.jar")))
    header = f"Class-Path: {names}"  # ASCII: file names from Maven Central
    # a manifest line holds at most 72 bytes; a continuation line starts with one space
    lines = [header[:72]] + [" " + header[i : i + 71] for i in range(72, len(header), 71)]
    manifest = ["Manifest-Version: 1.0", f"Main-Class: {JOB_SERVER_MAIN}", *lines, "", ""]
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "\r\n".join(manifest))
    return jar


def fetch(root: Path, update_lock: bool = False) -> Path:
    """Fetch, verify and mark ready; returns the launcher jar."""
    ready = root / READY
    if not update_lock and ready.is_file() and ready.read_text().strip() == sha256_file(LOCK):
        return job_server_jar(root)  # fetched and verified against this very lock
    root.mkdir(parents=True, exist_ok=True)
    ready.unlink(missing_ok=True)
    fetch_job_server(root)
    fetch_flink(root)
    got = lock_entries(root)
    if update_lock:
        LOCK.write_text("".join(f"{digest}  {name}\n" for name, digest in got.items()))
    check(got, read_lock())
    jar = write_launcher(root)
    ready.write_text(sha256_file(LOCK) + "\n")
    return jar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cropaudit.engine.fetch", description=__doc__)
    parser.add_argument("--dir", help="engine cache (default $CROPAUDIT_ENGINE_DIR or ~/.cache)")
    parser.add_argument("--update-lock", action="store_true", help="rewrite the sha256 lock")
    args = parser.parse_args(argv)
    try:
        jar = fetch(engine_dir(args.dir), update_lock=args.update_lock)
    except UserError as exc:
        print(f"cropaudit: error: {exc}", file=sys.stderr)
        return 2
    print(f"Flink engine ready: job server {jar}, Flink {flink_home(jar.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
