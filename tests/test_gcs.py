"""gs:// end to end against a local GCS emulator (``gcp-storage-emulator``, started here).

Manifest, images, model (FastGaze from ../shared when present, else the built-in baseline) and
every output live in an emulated bucket; the survival table read back from gs:// must equal the
local run's, the statistics stage must read and write gs://, and pandas (through gcsfs) must read
the survival Parquet straight from the bucket.

Nothing may reach real Google Cloud: the emulator's environment is set before any client exists,
every ``requests`` call to a non-loopback host raises at once (a non-retryable error, so no
client library backs off for minutes), and each test runs under a hard deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import gcp_storage_emulator  # noqa: F401 - a test dependency: fail, never skip, when missing
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropaudit import fileio, locks, ownership
from cropaudit.errors import UserError
from cropaudit.pipelines.audit_pipeline import (
    RUN_OUTPUT,
    RunPaths,
    read_table,
    run_audit,
    table_hash,
)
from cropaudit.pipelines.demo_pipeline import embedded_config
from cropaudit.synthetic import write_face_set
from tests.conftest import SHARED
from tests.services import canonical_estimates, free_port, stop_group, wait_for_port

BUCKET = "cropaudit-test"
PROJECT = "cropaudit-test-project"
START_TIMEOUT_S = 30
#: Hard limit per test: a stall (e.g. a client backing off against an unreachable host) fails.
DEADLINE_S = 150
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
VXM = "data/fastgaze/fastgaze.vxm"


class RealNetworkAccess(AssertionError):
    """A test tried to reach a host other than the emulator (not retryable by any client)."""


def _emulator_env(url: str, home: Path) -> dict[str, str]:
    """Everything Google's client libraries read, pointed at the emulator or at nothing."""
    return {
        "STORAGE_EMULATOR_HOST": url,  # google-cloud-storage (Beam's gcsio) and gcsfs
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "CLOUDSDK_CORE_PROJECT": PROJECT,
        "CLOUDSDK_CONFIG": str(home),  # no gcloud application-default credentials
        "NO_GCE_CHECK": "true",  # google-auth, gcsfs: do not probe the GCE metadata server
        "GCE_METADATA_HOST": "127.0.0.1:9",  # and if something does, it is refused locally
        "GCE_METADATA_IP": "127.0.0.1:9",
        # gcsfs >= 2025.x asks the gRPC storage-control API for the bucket type, which the
        # emulator lacks (60 s of TLS retries per call); its plain JSON-API filesystem is used
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }


@contextlib.contextmanager
def _deadline(seconds: float):
    """Raise ``TimeoutError`` in the test if it runs longer than ``seconds`` (main thread)."""

    def fire(signum, frame):
        raise TimeoutError(f"gs:// test exceeded {seconds} s: something stalled")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """The emulator's URL, with the process environment pointed at it for the module."""
    work = tmp_path_factory.mktemp("gcs_emulator")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "emulator.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host=127.0.0.1",
                f"--port={port}",
                "--in-memory",
            ],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: killed as a whole
        )
    mp = pytest.MonkeyPatch()
    from apache_beam.internal.gcp import auth

    saved_credentials = (auth._Credentials._credentials_init, auth._Credentials._credentials)
    try:
        wait_for_port(port, proc, time.monotonic() + START_TIMEOUT_S, log)
        mp.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        for name, value in _emulator_env(url, work / "gcloud").items():
            mp.setenv(name, value)
        _loopback_only(mp)
        fileio.use_emulator_credentials()  # cropaudit was imported before the env was set

        from google.cloud import storage

        storage.Client(project=PROJECT).create_bucket(BUCKET)
        yield url
    finally:
        mp.undo()
        auth._Credentials._credentials_init, auth._Credentials._credentials = saved_credentials
        stop_group(proc)


def _loopback_only(mp: pytest.MonkeyPatch) -> None:
    """Make every HTTP(S) request through ``requests`` to a non-loopback host fail at once."""
    import requests.adapters

    original = requests.adapters.HTTPAdapter.send

    def send(self, request, *args, **kwargs):
        host = urllib.parse.urlsplit(request.url).hostname
        if host not in LOOPBACK:
            raise RealNetworkAccess(f"tried to reach {request.url}; only the emulator is allowed")
        return original(self, request, *args, **kwargs)

    mp.setattr(requests.adapters.HTTPAdapter, "send", send)


def _upload_tree(local: Path, prefix: str) -> None:
    """Upload every file under ``local`` to ``gs://BUCKET/prefix/`` with the plain GCS client."""
    from google.cloud import storage

    bucket = storage.Client(project=PROJECT).bucket(BUCKET)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            bucket.blob(f"{prefix}/{path.relative_to(local).as_posix()}").upload_from_filename(
                str(path)
            )


def gs(path: str) -> str:
    return f"gs://{BUCKET}/{path}"


# -- fast: the guard and cropaudit.fileio on gs:// --------------------------------------------


def test_real_google_endpoints_fail_fast(gcs):
    import requests

    started = time.monotonic()
    with pytest.raises(RealNetworkAccess):
        requests.get("https://storage.googleapis.com/storage/v1/b/any", timeout=5)
    assert time.monotonic() - started < 1


def test_fileio_on_gcs_treats_prefixes_as_folders(gcs):
    with _deadline(DEADLINE_S):
        root = gs("fileio")
        fileio.write_atomic(fileio.join(root, "run", "summary.json"), b"{}")
        fileio.write_bytes(fileio.join(root, "run", "survival", "part-0.parquet"), b"x" * 10)
        fileio.write_bytes(fileio.join(root, "run", "survival", "part-1.parquet"), b"y")
        fileio.write_bytes(fileio.join(root, "run", "deep", "a", "b.txt"), b"z")

        assert fileio.read_bytes(fileio.join(root, "run", "summary.json")) == b"{}"
        with pytest.raises(UserError, match="limit"):
            fileio.read_bytes(fileio.join(root, "run", "survival", "part-0.parquet"), limit=4)
        with pytest.raises(FileNotFoundError):
            fileio.read_bytes(fileio.join(root, "run", "missing"))
        assert fileio.exists(fileio.join(root, "run", "survival"))  # a folder: objects below
        assert not fileio.exists(fileio.join(root, "run", "surv"))
        assert fileio.glob(fileio.join(root, "run", "*")) == [  # folders listed, as locally
            fileio.join(root, "run", name) for name in ("deep", "summary.json", "survival")
        ]
        assert fileio.glob(fileio.join(root, "run", "survival", "*.parquet")) == [
            fileio.join(root, "run", "survival", f"part-{i}.parquet") for i in (0, 1)
        ]
        fileio.delete_tree(fileio.join(root, "run", "survival"))
        fileio.delete_tree(fileio.join(root, "run", "summary.json"))
        assert fileio.glob(fileio.join(root, "run", "*")) == [fileio.join(root, "run", "deep")]


def test_claim_sees_nested_objects_on_gcs_and_keeps_foreign_ones(gcs):
    """A gs:// folder holding only a killed run's objects (none at its top) is not empty; with
    overwrite the run's part goes, a foreign object below stays, Beam's temp objects go."""
    with _deadline(DEADLINE_S):
        paths = RunPaths(gs("partial"))
        notes = fileio.join(paths.survival, "notes.txt")
        fileio.write_bytes(notes, b"keep")
        with pytest.raises(UserError, match="not empty"):
            ownership.claim(paths.root, RUN_OUTPUT, overwrite=False)
        ownership.claim(paths.root, RUN_OUTPUT, overwrite=True)  # then the run is killed:
        part = fileio.join(paths.survival, "part-00000-of-00002.parquet")
        temp = fileio.join(paths.survival, "beam-temp-part-1234", "shard")
        for uri in (part, temp):
            fileio.write_bytes(uri, b"x")
        with pytest.raises(UserError, match="already holds a run output"):
            ownership.claim(paths.root, RUN_OUTPUT, overwrite=False)
        ownership.claim(paths.root, RUN_OUTPUT, overwrite=True)
        assert sorted(fileio.files_under(paths.root)) == [
            fileio.join(paths.root, ownership.MARKER),
            notes,
        ]
        assert ownership.read_owner(paths.root)["kind"] == "run"


def test_lock_on_gcs_is_exclusive_and_names_its_holder(gcs, monkeypatch):
    """A second writer fails at once naming the first; a dead holder on this host is taken
    over; the lock object is created only-if-absent (``ifGenerationMatch=0``: the emulator
    ignores preconditions, so the request itself is checked for it)."""
    import requests.adapters

    sent = []
    original = requests.adapters.HTTPAdapter.send

    def spy(self, request, *args, **kwargs):
        sent.append(request.url)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", spy)
    with _deadline(DEADLINE_S):
        folder = gs("locked")
        with locks.exclusive(folder, "cropaudit run first") as holder:
            started = time.monotonic()
            busy = f"`cropaudit run first` \\(pid {holder.pid} on"
            with pytest.raises(UserError, match=busy), locks.exclusive(folder, "second"):
                pass
            assert time.monotonic() - started < 10
        creates = [u for u in sent if "uploadType=" in u]  # the only uploads so far
        assert creates and all("ifGenerationMatch=0" in u for u in creates)
        assert not fileio.exists(fileio.join(folder, locks.LOCK_NAME))  # released
        dead = locks.Holder(2**22 + 7, holder.host, "2020-01-01T00:00:00Z", "cropaudit run dead")
        fileio.write_bytes(fileio.join(folder, locks.LOCK_NAME), dead.to_bytes())
        with locks.exclusive(folder, "cropaudit run next"):
            pass
        other = locks.Holder(1, "another-host", "2020-01-01T00:00:00Z", "cropaudit run far")
        fileio.write_bytes(fileio.join(folder, locks.LOCK_NAME), other.to_bytes())
        with pytest.raises(UserError, match="pid 1 on another-host"), locks.exclusive(folder, "x"):
            pass


# -- the audit and statistics stages on gs:// (slow) ------------------------------------------


@pytest.fixture(scope="module")
def uploaded(gcs, tmp_path_factory):
    """Local experiment folder and its gs:// twin: ``faces/`` (+ ``models/fastgaze.vxm``)."""
    local = tmp_path_factory.mktemp("experiment")
    write_face_set(local / "faces", seed=5, subjects_per_group=2)
    vxm = SHARED / VXM
    if vxm.exists():
        (local / "models").mkdir()
        (local / "models" / "fastgaze.vxm").write_bytes(vxm.read_bytes())
    _upload_tree(local, "experiment")
    return local, gs("experiment"), vxm.exists()


@pytest.mark.slow
def test_audit_and_stats_on_gcs_match_local(uploaded, tmp_path):
    local, remote, have_fastgaze = uploaded
    # The config is the same for both runs (same hash, same provenance columns): the manifest is
    # relative to the config folder (local or gs://); the model is read from gs:// in both.
    spec = f"fastgaze:{remote}/models/fastgaze.vxm" if have_fastgaze else "baseline"
    cfg = embedded_config().replace(
        name="gcs",
        design={"composites_per_pair": 1, "controls": []},
        manifest={"path": "faces/manifest.csv"},
        model={"spec": spec},
    )
    out = gs("runs/audit")
    with _deadline(DEADLINE_S):
        here = run_audit(cfg, str(tmp_path / "run"), config_dir=str(local), quiet=True)
        there = run_audit(cfg, out, config_dir=remote, quiet=True)

        assert there["manifest"] == f"{remote}/faces/manifest.csv"
        assert there["model"]["model_source"] == (spec.partition(":")[2] or "builtin")
        assert there["survival_rows"] == here["survival_rows"] == 12
        assert there["all_composites_accounted"] and not there["composites_dead_lettered"]
        assert fileio.exists(fileio.join(out, "_SUCCESS"))
        survival = read_table(fileio.join(out, "survival"))
        assert fileio.glob(fileio.join(out, "survival", "*.parquet"))[0].startswith("gs://")
        local_hash = table_hash(read_table(str(tmp_path / "run" / "survival")))
        assert table_hash(survival) == local_hash
        assert there["survival_table_sha256"] == here["survival_table_sha256"] == local_hash

        from cropaudit.pipelines.stats_pipeline import run_stats

        stats_out = gs("runs/stats")
        written = run_stats([out], stats_out, replicates=50, seed=7)
        local_written = run_stats(
            [str(tmp_path / "run")], str(tmp_path / "stats"), replicates=50, seed=7, render=False
        )
        assert written.startswith(f"{stats_out}/estimates/")
        for name in ("_SUCCESS", "report.html", "plots/point.png"):
            assert fileio.exists(fileio.join(stats_out, name)), name
        remote_est, local_est = (
            canonical_estimates(pq.read_table(pa.BufferReader(fileio.read_bytes(f))))
            for f in (written, local_written)
        )
        assert remote_est.num_rows > 0 and remote_est.equals(local_est)

        # Other tools read the same objects: pandas/pyarrow through gcsfs, at the emulator
        # (its JSON-API filesystem: see GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT above).
        import pandas as pd
        from gcsfs.core import GCSFileSystem

        fs = GCSFileSystem(token="anon", endpoint_url=os.environ["STORAGE_EMULATOR_HOST"])
        df = pd.read_parquet(fs._strip_protocol(fileio.join(out, "survival")), filesystem=fs)
        assert len(df) == 12
        assert sorted(df["composite_id"]) == sorted(survival.column("composite_id").to_pylist())
