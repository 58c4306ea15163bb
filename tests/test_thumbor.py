"""thumbor as a box cropper: a real thumbor server (from its own venv) started and stopped by the
cropper, a user's server, and the dead letters of an unreachable or garbage-answering one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from services import serve_bytes, tiny_config
from tests_support import astronaut_saliency_json, real_faces

from cropaudit.cli import main
from cropaudit.errors import UserError
from cropaudit.model.cropper import checked, crop_batch
from cropaudit.model.croppers.thumbor import ThumborServer, venv_python
from cropaudit.model.registry import load_handler
from cropaudit.transforms.crop import crop_box

pytestmark = pytest.mark.slow
RATIOS = (0.56, 1.0, 1.14, 2.0)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _face_over_flat() -> np.ndarray:
    face = real_faces()["astronaut"]
    return np.concatenate([np.full_like(face, 128), face], axis=0)  # the photo below


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ThumborServer(venv_python(), str(tmp_path_factory.mktemp("thumbor"))) as running:
        yield running


def test_the_cropper_starts_its_own_server_crops_around_the_face_and_stops_it():
    cropper = load_handler("thumbor")
    model = cropper.load_model()
    pid = model.server.pid
    assert _alive(pid) and model.url.startswith("http://127.0.0.1:")
    image = _face_over_flat()  # 512 x 1024, the astronaut in the lower half
    cropping = model.crop(image, RATIOS)
    cropping.check(512, 1024)
    for ar, box in zip(cropping.ratios, cropping.boxes):
        largest = crop_box(0, 0, 512, 1024, ar)
        assert (box.w, box.h) == (largest.w, largest.h)
    # thumbor found Eileen Collins' face (about x 170-270, y 50-170 of the photo) and cut to it
    for x, y in cropping.focus:
        assert 150 < x < 300 and 512 + 40 < y < 512 + 200
    assert cropping.boxes[0].y > 512 - 100  # the 512x287 box sits on the lower half
    log = model.server.log_path
    model.close()
    assert not _alive(pid) and "/unsafe/meta/" in log.read_text()  # the log stays
    assert not model.server.images.exists()


def test_versions_and_detector_settings_are_recorded():
    d = load_handler("thumbor").describe()
    assert "pypi:thumbor==7.8.0" in d["model_source"]
    settings = json.loads(d["preprocessing"].split("settings ", 1)[1])
    assert settings["config"]["DETECTORS"] == [
        "thumbor.detectors.face_detector", "thumbor.detectors.feature_detector",
    ]  # fmt: skip
    assert settings["versions"]["thumbor"] == "7.8.0"
    assert "opencv-python-headless" in settings["versions"]


def test_a_killed_cropaudit_leaves_no_server_behind(tmp_path):
    code = (
        "import sys, time\n"
        "from cropaudit.model.croppers.thumbor import ThumborServer, venv_python\n"
        f"s = ThumborServer(venv_python(), {str(tmp_path)!r}).start()\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert _alive(pid)
    finally:
        parent.kill()  # SIGKILL: no finalizer runs; the server's watchdog must end it
        parent.wait()
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)


def test_a_users_server_gives_the_same_crops_and_is_left_running(server):
    spec = f"thumbor+{server.url}#root={server.images}"
    cropper = load_handler(spec)
    assert cropper.source == f"thumbor at {server.url} (the user's server)"
    image = real_faces()["astronaut"]
    got = cropper.load_model().crop(image, RATIOS)
    own = load_handler("thumbor").load_model()
    try:
        assert own.crop(image, RATIOS) == got
    finally:
        own.close()
    with urllib.request.urlopen(f"{server.url}/healthcheck", timeout=5) as answer:
        assert answer.read().strip() == b"WORKING"  # the cropper never stops a user's server


def test_bad_user_specs_are_user_errors(tmp_path):
    for spec, match in [
        ("thumbor+ftp://127.0.0.1:1#root=.", "thumbor\\+http://HOST:PORT"),
        ("thumbor+http://127.0.0.1:1", "#root=DIR"),
        (f"thumbor+http://127.0.0.1:1#root={tmp_path / 'missing'}", "existing folder"),
    ]:
        with pytest.raises(UserError, match=match):
            load_handler(spec)


def test_unreachable_and_garbage_servers_are_dead_letters_with_reasons(tmp_path):
    image = real_faces()["astronaut"]
    stopped = ThumborServer(venv_python(), str(tmp_path / "stopped")).start()
    stopped.stop()
    (tmp_path / "root").mkdir()
    root = tmp_path / "root"
    answers = {
        f"thumbor+{stopped.url}#root={root}": "http_error",
    }
    with (
        serve_bytes(b"<html>not thumbor</html>") as garbage,
        serve_bytes(
            json.dumps(
                {"thumbor": {"operations": [{"type": "crop", "left": 0}], "focal_points": []}}
            ).encode()  # fmt: skip
        ) as partial,
        serve_bytes(
            json.dumps(
                {
                    "thumbor": {
                        "operations": [
                            {"type": "crop", "left": 0, "top": 0, "right": 9999, "bottom": 10}
                        ],
                        "focal_points": [],
                    }
                }
            ).encode()  # fmt: skip
        ) as outside,
    ):
        for httpd, reason in ((garbage, "malformed_response"), (partial, "malformed_response"),
                              (outside, "bad_crop_box")):  # fmt: skip
            host, port = httpd.server_address
            answers[f"thumbor+http://{host}:{port}#root={root}"] = reason
        for spec, reason in answers.items():
            (result,) = crop_batch(load_handler(spec).load_model(), [image], RATIOS)
            problem = checked(result, 512, 512)
            assert problem is not None and problem[0] == reason, (spec, problem)
        assert garbage.requests[0].startswith("/unsafe/meta/512x287/smart/")


def test_saliency_json_gives_thumbors_crops(capsys, tmp_path):
    out = astronaut_saliency_json(capsys, tmp_path, "thumbor")
    assert out["model_name"] == "thumbor" and out["salient_point"] is None
    assert [c["aspect_ratio"] for c in out["crops"]] == [0.56, 1.0, 1.14, 2.0, 1.0]
    assert all(150 < c["focus"]["x"] < 300 for c in out["crops"])


def test_a_run_writes_rows_for_the_web_croppers(tmp_path):
    """A run comparing the croppers (``model.compare``, what ``demo --models`` sets): they travel
    to the workers and thumbor's server starts there; a cut-down demo (12 composites) keeps it
    short."""
    from cropaudit.rundir import read_table
    from cropaudit.synthetic import write_face_set

    names = ["vips-attention", "vips-entropy", "thumbor", "smartcrop"]
    manifest = write_face_set(tmp_path / "faces", seed=5, subjects_per_group=1)
    config = tiny_config(manifest, "web").replace(model={"spec": names[0], "compare": names[1:]})
    (tmp_path / "web.toml").write_text(config.to_toml())
    assert main(["run", str(tmp_path / "web.toml"), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0  # fmt: skip
    df = read_table(str(tmp_path / "run" / "survival")).to_pandas()
    assert set(df.model_name) == set(names)
    counts = df.groupby("model_name").size()
    assert (counts == df.sample_id.nunique()).all() and df.sample_id.nunique() >= 12
    assert df[df.model_name == "thumbor"].model_source.str.contains("thumbor==7.8.0").all()
