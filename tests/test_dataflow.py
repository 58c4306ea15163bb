"""The audit as a Dataflow job, built and staged offline (classic template creation): Beam's
DataflowRunner writes the job and its staged files to the GCS emulator and submits nothing."""

from __future__ import annotations

import json
import socket
import zipfile

import pytest

from cropaudit import fileio
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.synthetic import write_face_set
from tests.services import tiny_config
from tests.test_gcs import DEADLINE_S, LOOPBACK, PROJECT, _deadline, gcs, gs  # noqa: F401

STAGES = (
    "ReadFaces",
    "SampleComposites",
    "RenderComposites",
    "PredictSaliency",
    "SimulateCrops",
    "WriteSurvivalTable",
    "WriteDeadLetters",
)


@pytest.fixture
def connections(monkeypatch):
    """Every socket connection the test makes, by host; a non-loopback one fails at once."""
    seen: list[str] = []
    original = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        seen.append(host)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
            raise ConnectionRefusedError(f"test: no network outside loopback ({host})")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.mark.slow
@pytest.mark.usefixtures("gcs")
def test_dataflow_job_is_built_and_staged_offline(connections, tmp_path):
    from apache_beam.portability.api import beam_runner_api_pb2

    manifest = write_face_set(tmp_path / "faces", seed=5, subjects_per_group=2)
    cfg = tiny_config(manifest, "dataflow")
    gpu = "worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver"
    args = [
        "--runner=dataflow",
        f"--project={PROJECT}",
        "--region=europe-west4",
        f"--temp_location={gs('tmp')}",
        f"--staging_location={gs('staging')}",
        f"--template_location={gs('templates/audit.json')}",
        "--job_name=cropaudit-offline",
        "--machine_type=n1-standard-8",
        "--disk_size_gb=100",
        "--max_num_workers=4",
        f"--dataflow_service_options={gpu}",
        "--experiments=no_use_multiple_sdk_containers",
        "--sdk_location=container",  # workers use the SDK in their image: nothing from PyPI
        "--no_auth",  # no credentials here: the Dataflow client must not start an OAuth flow
    ]
    with _deadline(DEADLINE_S):
        done = run_audit(cfg, gs("runs/offline"), quiet=True, pipeline_args=args)
        job = json.loads(fileio.read_bytes(gs("templates/audit.json")))
        staged = {name.rsplit("/", 1)[-1]: name for name in fileio.glob(gs("staging/*/*"))}
        staged.update({name.rsplit("/", 1)[-1]: name for name in fileio.glob(gs("staging/*"))})

    assert done == {"runner": "dataflow", "template_location": gs("templates/audit.json")}
    assert not fileio.exists(gs("runs/offline/_SUCCESS"))  # nothing ran, nothing published
    assert {h for h in connections if h not in LOOPBACK} == set()

    # the job graph: Runner v2 ships the pipeline proto; every stage of the audit is in it
    pipeline = beam_runner_api_pb2.Pipeline.FromString(fileio.read_bytes(staged["pipeline.pb"]))
    names = {t.unique_name for t in pipeline.components.transforms.values()}
    assert set(STAGES) <= names

    # the project's wheel is staged, and it names its requirements (Beam pinned as here)
    (wheel,) = [n for n in staged if n.startswith("cropaudit-") and n.endswith(".whl")]
    extra = fileio.read_bytes(staged["extra_packages.txt"]).decode().split()
    assert extra == [wheel]
    local_wheel = tmp_path / wheel
    local_wheel.write_bytes(fileio.read_bytes(staged[wheel]))
    with zipfile.ZipFile(local_wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    from apache_beam.version import __version__ as beam_version

    assert f"Requires-Dist: apache-beam[gcp]=={beam_version}" in meta
    assert "Requires-Dist: tensorflow-cpu" in meta

    # worker options where Dataflow reads them
    env = job["environment"]
    (pool,) = env["workerPools"]
    assert pool["machineType"] == "n1-standard-8"
    assert pool["diskSizeGb"] == 100
    assert pool["autoscalingSettings"]["maxNumWorkers"] == 4
    assert gpu in env["serviceOptions"]
    assert "no_use_multiple_sdk_containers" in env["experiments"]
    assert job["name"] == "cropaudit-offline"
    assert env["sdkPipelineOptions"]["options"]["project"] == PROJECT
