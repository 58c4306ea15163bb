"""Runner profiles, and the audit on a real multi-process Beam engine: Beam's local job service
plus an EXTERNAL worker pool (separate SDK-harness processes), against the FnApiRunner result."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cropaudit.errors import UserError
from cropaudit.pipelines.audit_pipeline import read_table, run_audit, table_hash
from cropaudit.pipelines.runners import apply_profile, pipeline_options, split_runner
from cropaudit.synthetic import write_face_set
from tests.services import (
    estimates_by_runner,
    free_port,
    services_running,
    tiny_config,
    worker_pool_command,
)

# -- runner profiles (fast) -----------------------------------------------------------------


def test_runner_names_and_aliases():
    assert split_runner(None) == ("direct", [])
    assert split_runner(["--runner", "PortableRunner", "--x=1"]) == ("portable", ["--x=1"])
    assert split_runner(["--runner=DataflowRunner"])[0] == "dataflow"
    assert split_runner(["--runner=flink"])[0] == "flink"
    assert split_runner(["--runner=SparkRunner"])[0] == "spark"
    with pytest.raises(UserError, match="unknown runner"):
        split_runner(["--runner=samza"])


def test_direct_options_pass_through_unchanged():
    args = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    runner, options = pipeline_options(args)
    assert runner == "direct"
    assert options.get_all_options()["direct_num_workers"] == 2


def test_portable_defaults_and_environment_checks():
    _, options = pipeline_options(["--runner=portable"])
    got = options.get_all_options()
    assert got["job_endpoint"] == "localhost:8099"
    assert got["environment_type"] == "LOOPBACK"
    args = ["--job_endpoint=host:1", "--environment_type=EXTERNAL", "--environment_config=w:2"]
    assert apply_profile("portable", args) == args
    with pytest.raises(UserError, match="needs --environment_config"):
        pipeline_options(["--runner=portable", "--environment_type=EXTERNAL"])
    with pytest.raises(UserError, match="needs --environment_config"):
        pipeline_options(["--runner=flink", "--environment_type=PROCESS"])


def test_dataflow_requires_project_region_and_gcs_temp_location():
    with pytest.raises(UserError, match="--project, --region, --temp_location"):
        apply_profile("dataflow", [])
    with pytest.raises(UserError, match="gs://"):
        apply_profile("dataflow", ["--project=p", "--region=r", "--temp_location=/tmp"])


def test_dataflow_ships_the_project_unless_an_image_or_package_carries_it():
    base = ["--project=p", "--region=europe-west4", "--temp_location=gs://b/tmp"]
    built = apply_profile("dataflow", base, build_wheel=lambda: "/w/cropaudit-0.1.0.whl")
    assert built == [*base, "--extra_package=/w/cropaudit-0.1.0.whl"]

    def never():
        raise AssertionError("no wheel needed")

    for carrier in ("--sdk_container_image=eu.gcr.io/p/cropaudit:1", "--extra_package=x.whl"):
        assert apply_profile("dataflow", [*base, carrier], build_wheel=never) == [*base, carrier]


# -- the audit on a job service + EXTERNAL worker pool (slow) ----------------------------------


@pytest.fixture(scope="module")
def beam_services(tmp_path_factory):
    """(job endpoint, worker-pool address) of a local job service and an EXTERNAL worker pool."""
    job_port, pool_port = free_port(), free_port()
    job = [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main"]
    commands = {
        "job": ([*job, f"--port={job_port}"], job_port),
        "pool": (worker_pool_command(pool_port), pool_port),
    }
    with services_running(commands, tmp_path_factory.mktemp("beam_services")):
        yield f"localhost:{job_port}", f"localhost:{pool_port}"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return write_face_set(tmp_path_factory.mktemp("faces"), seed=5, subjects_per_group=2)


@pytest.mark.slow
def test_audit_on_job_service_with_external_workers_matches_direct(
    beam_services, manifest, tmp_path
):
    job_endpoint, pool = beam_services
    cfg = tiny_config(manifest, "portable")
    direct = run_audit(cfg, str(tmp_path / "direct"), quiet=True)
    portable_args = [
        "--runner=portable",
        f"--job_endpoint={job_endpoint}",
        "--environment_type=EXTERNAL",
        f"--environment_config={pool}",
    ]
    portable = run_audit(cfg, str(tmp_path / "portable"), quiet=True, pipeline_args=portable_args)

    assert portable["runner"] == "portable"
    assert portable["composites_expected"] == direct["composites_expected"] == 12
    assert portable["survival_rows"] == 12 and portable["all_composites_accounted"]
    hashes = {
        name: table_hash(read_table(str(tmp_path / name / "survival")))
        for name in ("direct", "portable")
    }
    assert hashes["portable"] == hashes["direct"] == direct["survival_table_sha256"]
    assert portable["survival_table_sha256"] == direct["survival_table_sha256"]

    estimates = estimates_by_runner(tmp_path, {"direct": None, "portable": portable_args})
    direct_est, portable_est = estimates["direct"], estimates["portable"]
    assert direct_est.num_rows > 0
    assert portable_est.equals(direct_est)
