"""The audit on real engines, against the FnApiRunner, with a catalogue model served on loopback:
a standalone Flink cluster (JobManager and TaskManager as separate JVMs from the fetched engine,
Beam's job server, an EXTERNAL SDK worker pool), a TaskManager killed mid-run with and without a
restart strategy, and Spark in Beam's Spark job server; plus the engine cache, its lock and the
``flink``/``spark`` profiles (fast, no Java)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from cropaudit.engine import cache, fetch, flink_local
from cropaudit.errors import UserError
from cropaudit.model.catalogue import BUILTIN, CATALOGUE_ENV
from cropaudit.model.download import CACHE_ENV, OFFLINE_ENV
from cropaudit.pipelines.audit_pipeline import SUCCESS, read_table, run_audit, table_hash
from cropaudit.pipelines.runners import SDK_WORKER_KEEP_MS, apply_profile, failure_line
from cropaudit.progress import COUNTER_ORDER
from cropaudit.synthetic import write_face_set
from tests.conftest import shared_file
from tests.services import (
    estimates_by_runner,
    free_port,
    manifest_class_path,
    manifest_headers,
    serve_bytes,
    services_running,
    tiny_config,
    worker_pool_command,
)

REPO = Path(__file__).resolve().parents[1]


# -- the engine cache and the profile (fast) -------------------------------------------------


def ready_engine(root: Path, runner: str = "flink") -> Path:
    """An engine folder that passes the cache's checks (a launcher jar and ``READY``)."""
    jar = cache.job_server_jar(root, runner)
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"jar")
    (root / cache.READY).write_text("x\n")
    return jar


@pytest.mark.parametrize("runner", ["flink", "spark"])
def test_profile_uses_the_cached_job_server_and_never_downloads(tmp_path, monkeypatch, runner):
    monkeypatch.setenv(cache.ENGINE_DIR_ENV, str(tmp_path / "none"))
    with pytest.raises(UserError, match=f"{runner}: .*make flink-engine"):
        apply_profile(runner, [])
    keep = f"--environment_cache_millis={SDK_WORKER_KEEP_MS}"
    own = [f"--{runner}_job_server_jar=/opt/js.jar"]
    assert apply_profile(runner, own) == [*own, keep]  # a jar the user gives needs no cache
    assert apply_profile(runner, ["--job_endpoint=h:8099"]) == ["--job_endpoint=h:8099", keep]

    monkeypatch.setenv(cache.ENGINE_DIR_ENV, str(tmp_path / "engine"))
    jar = ready_engine(tmp_path / "engine", runner)
    assert apply_profile(runner, []) == [f"--{runner}_job_server_jar={jar}", keep]
    mine = ["--environment_cache_millis=5"]
    assert apply_profile(runner, mine) == [*mine, f"--{runner}_job_server_jar={jar}"]


def test_lock_check_names_every_missing_extra_and_changed_file():
    want = {"a.jar": "1", "b.jar": "2", "c.jar": "3"}
    fetch.check(dict(want), want)
    with pytest.raises(UserError) as err:
        fetch.check({"a.jar": "1", "b.jar": "9", "d.jar": "4"}, want)
    assert str(err.value).endswith("missing c.jar; not in the lock: d.jar; sha256 mismatch: b.jar")


def test_committed_lock_pins_the_job_servers_flink_and_spark_versions():
    names = fetch.read_lock()
    flink, spark = cache.JOB_SERVERS["flink"].folder, cache.JOB_SERVERS["spark"].folder
    assert f"{flink}/lib/beam-runners-flink-{cache.FLINK_MINOR}-{cache.BEAM_VERSION}.jar" in names
    assert f"{spark}/lib/beam-runners-spark-3-{cache.BEAM_VERSION}.jar" in names
    assert f"downloads/apache-flink-libraries-{cache.FLINK_VERSION}.tar.gz" in names
    assert f"downloads/pyspark-{cache.SPARK_VERSION}.tar.gz" in names
    # Spark's jars come from pyspark only: none from Maven, which could clash with them
    assert not [n for n in names if n.startswith(f"{spark}/lib/spark-")]
    assert all(len(digest) == 64 for digest in names.values())


def test_launcher_manifest_lists_every_jar_within_the_line_limit(tmp_path):
    lib = cache.job_server_dir(tmp_path) / "lib"
    lib.mkdir(parents=True)
    names = [f"google-api-services-cloudresourcemanager-v1-rev{i:08d}-2.0.0.jar" for i in range(9)]
    for name in names:
        (lib / name).write_bytes(b"")
    jar = fetch.write_launcher(tmp_path)
    raw = zipfile.ZipFile(jar).read("META-INF/MANIFEST.MF")
    assert all(len(line) <= 72 for line in raw.split(b"\r\n"))
    main, class_path = manifest_class_path(raw)
    assert main == cache.JOB_SERVERS["flink"].main
    assert class_path == [f"lib/{n}" for n in sorted(names)]
    assert b"Add-Opens" not in raw


def test_spark_launcher_adds_spark_jars_but_its_guava_and_opens_jdk_packages(tmp_path):
    lib = cache.job_server_dir(tmp_path, "spark") / "lib"
    jars = cache.spark_home(tmp_path) / "jars"
    for folder, name in [(lib, "beam-runners-spark-3.jar"), (jars, "spark-core_2.12-3.5.0.jar")]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    (jars / fetch.SPARK_LEFT_OUT[0]).write_bytes(b"")
    raw = zipfile.ZipFile(fetch.write_launcher(tmp_path, "spark")).read("META-INF/MANIFEST.MF")
    main, class_path = manifest_class_path(raw)
    assert main == "org.apache.beam.runners.spark.SparkJobServerDriver"
    home = cache.spark_home(tmp_path).name
    assert class_path == [
        "lib/beam-runners-spark-3.jar",
        f"../{home}/jars/spark-core_2.12-3.5.0.jar",
    ]
    opens = manifest_headers(raw)["Add-Opens"].split()
    assert "java.base/sun.nio.ch" in opens and "java.base/java.nio" in opens


def test_failure_line_keeps_the_engine_error_in_one_line():
    java = (
        "Pipeline BeamApp-1 failed in state FAILED: java.io.IOException: Insufficient number "
        "of network buffers\n\tat org.apache.flink.X.y(X.java:1)"
    )
    assert failure_line(java) == "java.io.IOException: Insufficient number of network buffers"
    worker = (
        "Pipeline BeamApp-2 failed in state FAILED: java.lang.RuntimeException: Error received "
        "from SDK harness for instruction 1: Traceback (most recent call last):\n"
        '  File "manifests.py", line 73, in read_manifest\n'
        '    raise ManifestError(f"manifest not found: {uri}") from None\n'
        "cropaudit.errors.ManifestError: manifest not found: m.csv [while running 'ReadFaces']\n"
        "\tat org.apache.beam.Z(Z.java:2)\nCaused by: java.lang.IllegalStateException: x"
    )
    assert failure_line(worker) == (
        "cropaudit.errors.ManifestError: manifest not found: m.csv [while running 'ReadFaces']"
    )


# -- a real cluster (slow) ------------------------------------------------------------------


def flink_or_skip() -> None:
    """Skip (fail under ``CI``) without Java or the fetched engine (Flink and Spark)."""
    reason = cache.missing()
    try:
        flink_local.java()
    except UserError as exc:
        reason = str(exc)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Flink and Spark tests: {reason}")
        pytest.skip(reason)


@contextlib.contextmanager
def local_cluster(folder: Path, restart_attempts: int = 0):
    flink_or_skip()
    started = flink_local.start(folder, restart_attempts=restart_attempts)
    try:
        yield started
    finally:
        stopped = flink_local.stop(folder)
        assert set(stopped) <= {"jobmanager", "taskmanager", "workerpool"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The module's cluster, without a restart strategy (Flink's default here)."""
    with local_cluster(tmp_path_factory.mktemp("flink")) as started:
        yield started


#: The catalogue name the cluster tests audit with: FastGaze, fetched from a loopback server.
MODEL = "fastgaze-loopback"


@pytest.fixture(scope="module")
def catalogue_model(tmp_path_factory):
    """A user catalogue naming FastGaze at a loopback URL (sha256- and size-checked), with the
    module's own model cache; the CLI runs and the workers see it through the environment."""
    body = shared_file("data/fastgaze/fastgaze.vxm").read_bytes()
    fastgaze = BUILTIN["fastgaze"]
    folder = tmp_path_factory.mktemp("catalogue")
    with serve_bytes(body) as server, pytest.MonkeyPatch.context() as env:
        url = f"http://127.0.0.1:{server.server_address[1]}/fastgaze.vxm"
        toml = folder / "catalogue.toml"
        toml.write_text(
            f'[models.{MODEL}]\nkind = "fastgaze"\nsource = "{url}"\n'
            f'sha256 = "{fastgaze.sha256}"\nsize = {fastgaze.size}\n'
        )
        env.setenv(CATALOGUE_ENV, str(toml))
        env.setenv(CACHE_ENV, str(folder / "cache"))
        env.delenv(OFFLINE_ENV, raising=False)
        env.setenv("no_proxy", "*")
        yield server


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, catalogue_model) -> Path:
    folder = tmp_path_factory.mktemp("flink_config")
    manifest = write_face_set(folder / "faces", seed=5, subjects_per_group=2)
    path = folder / "flink.toml"
    path.write_text(tiny_config(manifest, "flink").replace(model={"spec": MODEL}).to_toml())
    return path


@pytest.fixture(scope="module")
def direct_run(config_file, tmp_path_factory) -> tuple[dict, Path]:
    """The DirectRunner's run of the same config: its summary and folder."""
    from cropaudit import config as config_mod

    out = tmp_path_factory.mktemp("flink_direct") / "direct"
    return run_audit(config_mod.load(str(config_file)), str(out), quiet=True), out


@pytest.fixture(scope="module")
def direct_estimates(direct_run):
    """The statistics stage over the DirectRunner's run, on the DirectRunner."""
    _, out = direct_run
    estimates = estimates_by_runner(out.parent, {"direct": None})["direct"]
    assert estimates.num_rows > 0
    return estimates


def cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cropaudit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_cluster_runs_separate_jobmanager_taskmanager_and_pool(cluster):
    state = flink_local.status(cluster.folder)
    assert state["running"] and set(state["processes"]) == {
        "jobmanager",
        "taskmanager",
        "workerpool",
    }
    pids = {p["pid"] for p in flink_local.read_state(cluster.folder)["processes"].values()}
    assert len(pids) == 3 and os.getpid() not in pids
    seen = state["overview"]
    assert seen["taskmanagers"] == 1 and seen["slots-total"] == 2
    assert seen["flink-version"] == cache.FLINK_VERSION
    assert cluster.flink_master.startswith("localhost:")


@pytest.mark.slow
def test_audit_and_stats_on_flink_match_direct(
    cluster, config_file, catalogue_model, direct_run, direct_estimates, tmp_path
):
    """The catalogue model is fetched once (verified by sha256) into the model cache; the
    Flink workers get the verified entry and cache folder and resolve the model themselves,
    once per worker process, never per element."""
    direct, _ = direct_run
    out = tmp_path / "flink"
    done = cli("run", str(config_file), "--out", str(out), *cluster.pipeline_args())
    assert done.returncode == 0, done.stderr[-3000:]
    assert catalogue_model.requests == ["/fastgaze.vxm"]  # one download, for every run here
    assert f"survival table sha256: {direct['survival_table_sha256']}" in done.stdout
    assert "s on flink" in done.stdout

    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["runner"] == "flink" and (out / SUCCESS).exists()
    assert summary["survival_table_sha256"] == direct["survival_table_sha256"]
    rows = read_table(str(out / "survival"))
    assert table_hash(rows) == direct["survival_table_sha256"]
    assert set(rows.column("model_name").to_pylist()) == {MODEL}
    assert set(rows.column("model_hash").to_pylist()) == {BUILTIN["fastgaze"].sha256}
    # Beam counters come back from Flink's metrics (padding depends on bundling: not compared)
    assert summary["beam_counters"]["composites_predicted"] == direct["composites_expected"]
    for name in COUNTER_ORDER[:3]:
        assert summary["beam_counters"][name] == direct["beam_counters"][name], name

    estimates = estimates_by_runner(tmp_path, {"flink": cluster.pipeline_args()})
    assert estimates["flink"].equals(direct_estimates)


def running_jobs(flink_master: str) -> list[dict]:
    with urllib.request.urlopen(f"http://{flink_master}/jobs/overview", timeout=5) as r:
        return [j for j in json.load(r)["jobs"] if j["state"] == "RUNNING"]


def run_and_kill_taskmanager(
    cluster, config_file: Path, out: Path
) -> tuple[subprocess.CompletedProcess, str]:
    """``cropaudit run`` on the cluster; once its job runs there, SIGKILL the TaskManager and
    start a new one. Returns the finished CLI process and the Flink job id."""
    cmd = [sys.executable, "-m", "cropaudit", "run", str(config_file), "--out", str(out)]
    run = subprocess.Popen(
        [*cmd, *cluster.pipeline_args()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (jobs := running_jobs(cluster.flink_master)):
            assert run.poll() is None, run.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the job never started on the cluster"
            time.sleep(0.5)
        time.sleep(2)  # tasks deployed and SDK workers starting
        state = flink_local.read_state(cluster.folder)
        assert flink_local.signal_process(state["processes"]["taskmanager"], signal.SIGKILL)
        flink_local.restart_taskmanager(cluster.folder)
        stdout, stderr = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    return subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr), jobs[0]["jid"]


def job_info(flink_master: str, job_id: str, what: str = "") -> dict:
    with urllib.request.urlopen(f"http://{flink_master}/jobs/{job_id}{what}", timeout=5) as r:
        return json.load(r)


@pytest.mark.slow
def test_killed_taskmanager_fails_the_run_loudly_and_publishes_nothing(
    cluster, config_file, tmp_path
):
    """No restart strategy (the cluster's default): the job must fail, the CLI must say so in
    one line and exit non-zero, and the output must carry no ``_SUCCESS``."""
    out = tmp_path / "killed"
    done, job_id = run_and_kill_taskmanager(cluster, config_file, out)
    assert done.returncode == 2, done.stderr[-3000:]
    message = [line for line in done.stderr.splitlines() if line.startswith("cropaudit: error:")]
    assert len(message) == 1, done.stderr[-3000:]
    assert "flink: the job failed on the engine:" in message[0]
    assert job_info(cluster.flink_master, job_id)["state"] == "FAILED"
    assert not (out / SUCCESS).exists()
    assert not (out / "run_summary.json").exists()
    assert "survival table sha256" not in done.stdout


@pytest.mark.slow
def test_killed_taskmanager_with_restarts_recovers_the_clean_table(
    config_file, direct_run, tmp_path
):
    """With a restart strategy and a new TaskManager, Flink reruns the job after the loss: the
    published table is the clean run's, no Parquet row lost or written twice by the restarted
    finalisation, and ``_SUCCESS`` is there. The strategy is the cluster's (Beam 2.70's Flink
    runner does not pass ``--number_of_execution_retries`` on to a batch job: the JobManager
    used no restarts with it), so this test starts its own cluster."""
    direct, direct_out = direct_run
    out = tmp_path / "recovered"
    with local_cluster(tmp_path / "cluster", restart_attempts=2) as cluster:
        done, job_id = run_and_kill_taskmanager(cluster, config_file, out)
        history = job_info(cluster.flink_master, job_id, "/exceptions")["exceptionHistory"]
        state = job_info(cluster.flink_master, job_id)["state"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert history["entries"], "the TaskManager was lost after the job had finished"
    assert state == "FINISHED"

    assert (out / SUCCESS).exists()
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["survival_table_sha256"] == direct["survival_table_sha256"]
    assert summary["duplicate_rows_removed"] == 0  # no copies from the lost attempt to collapse
    rows, clean = read_table(str(out / "survival")), read_table(str(direct_out / "survival"))
    assert rows.num_rows == clean.num_rows == direct["composites_expected"]
    assert len(set(rows.column("composite_id").to_pylist())) == rows.num_rows
    assert table_hash(rows) == table_hash(clean)
    # nothing of the lost attempt is left beside the published parts
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in direct_out.iterdir())
    assert not [p for p in out.rglob("*") if p.name.startswith("beam-temp")]


# -- Spark: Beam's Spark job server with Spark on local[2] (slow) ----------------------------


@pytest.fixture(scope="module")
def spark(tmp_path_factory) -> list[str]:
    """Beam's Spark job server from the cache (a JVM running Spark in ``local[2]``) and an SDK
    worker pool: the Beam options that run a job there."""
    flink_or_skip()
    logs = tmp_path_factory.mktemp("spark")
    jar = cache.find_job_server_jar(runner="spark")
    job_port, pool_port = free_port(), free_port()
    # Spark in the job server's JVM: its driver on loopback, no web UI (0.0.0.0:4040 otherwise)
    loopback = ["-Dspark.ui.enabled=false", "-Dspark.driver.bindAddress=127.0.0.1"]
    loopback += ["-Dspark.driver.host=localhost"]
    server = [flink_local.java(), *loopback, "-jar", str(jar), f"--job-port={job_port}"]
    server += ["--artifact-port=0", "--expansion-port=0", "--spark-master-url=local[2]"]
    server += [f"--artifacts-dir={logs / 'artifacts'}"]
    commands = {
        "jobserver": (server, job_port),
        "pool": (worker_pool_command(pool_port), pool_port),
    }
    with services_running(commands, logs):
        yield [
            "--runner=spark",
            f"--job_endpoint=localhost:{job_port}",
            "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{pool_port}",
        ]


@pytest.mark.slow
def test_audit_and_stats_on_spark_match_direct(
    spark, config_file, direct_run, direct_estimates, tmp_path
):
    direct, _ = direct_run
    out = tmp_path / "spark"
    done = cli("run", str(config_file), "--out", str(out), *spark)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"survival table sha256: {direct['survival_table_sha256']}" in done.stdout
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["runner"] == "spark" and (out / SUCCESS).exists()
    assert summary["beam_counters"]["composites_predicted"] == direct["composites_expected"]
    rows = read_table(str(out / "survival"))
    assert rows.num_rows == direct["composites_expected"]
    assert table_hash(rows) == direct["survival_table_sha256"]
    assert set(rows.column("model_hash").to_pylist()) == {BUILTIN["fastgaze"].sha256}

    assert estimates_by_runner(tmp_path, {"spark": spark})["spark"].equals(direct_estimates)
