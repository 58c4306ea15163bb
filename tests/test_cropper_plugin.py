"""Black-box croppers: Python callables and an HTTP endpoint, against a loopback server started
here (slow, failing and malformed answers included). Nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from cropaudit.errors import UserError
from cropaudit.model.cropper import checked, crop_batch
from cropaudit.model.plugin import CallableCropper, CropperError, HttpCropper, HttpSettings
from cropaudit.model.registry import load_handler
from tests.crop_server import CropServer

RATIOS = (0.56, 1.0, 2.0)


def images(n: int, size=(60, 80)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture
def server():
    with CropServer() as s:
        yield s


def http(server, path, tmp_path, **settings) -> HttpCropper:
    defaults = {"timeout": 5.0, "attempts": 3, "backoff": 0.01, "concurrency": 2}
    options = HttpSettings(**{**defaults, **settings})
    return HttpCropper(f"{server.url}{path}", options, str(tmp_path / "cache"))


def test_callable_plugin_by_module_and_function():
    cropper = load_handler("plugin:cropper_plugins:centred")
    assert isinstance(cropper, CallableCropper)
    image = images(1)[0]
    cropping = cropper.load_model().crop(image, RATIOS)
    cropping.check(80, 60)
    assert [b.h / b.w for b in cropping.boxes][1] == 1.0
    d = cropper.describe()
    assert d["model_name"] == "plugin:cropper_plugins:centred"
    assert json.loads(d["preprocessing"].split("settings ", 1)[1])["module_sha256"]


def test_callable_plugin_dicts_and_bad_answers():
    image = images(1)[0]
    ok = load_handler("plugin:cropper_plugins:top_left_dicts").load_model()
    assert ok.crop(image, RATIOS).boxes[0].w == 30
    for name, reason in [("outside", "bad_crop_box"), ("wrong_count", "malformed_response"),
                         ("broken", "cropper_error")]:  # fmt: skip
        model = load_handler(f"plugin:cropper_plugins:{name}").load_model()
        (result,) = crop_batch(model, [image], RATIOS)
        assert checked(result, 80, 60)[0] == reason


def test_unknown_plugins_are_user_errors():
    with pytest.raises(UserError, match="cannot import"):
        load_handler("plugin:no_such_module_here:f")
    with pytest.raises(UserError, match="has no"):
        load_handler("plugin:cropper_plugins:missing")
    with pytest.raises(UserError, match="entry point"):
        load_handler("plugin:no-such-entry-point")
    with pytest.raises(UserError, match="unknown settings"):
        load_handler("http://127.0.0.1:9/crop#retries=3")


def test_http_cropper_answers_and_caches_by_image(server, tmp_path):
    cropper = http(server, "/ok", tmp_path)
    batch = images(6)
    results = crop_batch(cropper.load_model(), batch, RATIOS)
    assert all(checked(r, 80, 60) is None for r in results)
    assert server.hits["/ok"] == 6
    # a rerun (a fresh worker, same cache) sends nothing and gets the same boxes
    again = crop_batch(cropper.load_model(), batch, RATIOS)
    assert again == results and server.hits["/ok"] == 6
    # other ratios are another question: asked once more per image
    crop_batch(cropper.load_model(), batch, (1.0,))
    assert server.hits["/ok"] == 12


def test_http_cropper_limits_concurrency(server, tmp_path):
    model = http(server, "/ok", tmp_path, concurrency=3).load_model()
    crop_batch(model, images(12), RATIOS)
    assert 2 <= server.max_in_flight <= 3


def test_http_cropper_retries_transient_failures_with_backoff(server, tmp_path):
    model = http(server, "/flaky", tmp_path, attempts=3, backoff=0.05).load_model()
    started = time.monotonic()
    (result,) = crop_batch(model, images(1), RATIOS)
    assert checked(result, 80, 60) is None
    assert server.hits["/flaky"] == 3  # two 503s, then the answer
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff 0.05 then 0.1 s


def test_http_cropper_dead_letters_what_keeps_failing(server, tmp_path):
    model = http(server, "/fail", tmp_path, attempts=3).load_model()
    (result,) = crop_batch(model, images(1), RATIOS)
    assert isinstance(result, CropperError) and result.reason == "http_error"
    assert "after 3 attempts" in str(result) and server.hits["/fail"] == 3
    # a client error is not retried
    (result,) = crop_batch(http(server, "/bad-request", tmp_path).load_model(), images(1), RATIOS)
    assert result.reason == "http_error" and server.hits["/bad-request"] == 1
    # nothing failing is cached: the next run asks again
    crop_batch(model, images(1), RATIOS)
    assert server.hits["/fail"] == 6


def test_http_cropper_times_out_slow_answers(server, tmp_path):
    model = http(server, "/slow", tmp_path, timeout=0.3, attempts=2).load_model()
    started = time.monotonic()
    (result,) = crop_batch(model, images(1), RATIOS)
    assert checked(result, 80, 60)[0] == "timeout"
    assert time.monotonic() - started < 0.3 * 2 + 0.5 + 0.5  # two timeouts and one backoff


def test_http_cropper_does_not_retry_malformed_answers(server, tmp_path):
    model = http(server, "/malformed", tmp_path).load_model()
    (result,) = crop_batch(model, images(1), RATIOS)
    assert checked(result, 80, 60)[0] == "malformed_response"
    assert server.hits["/malformed"] == 1


@pytest.mark.slow
def test_a_run_dead_letters_an_endpoint_failures_and_scores_the_rest(server, tmp_path, monkeypatch):
    """baseline beside a failing HTTP cropper: every composite is accounted for."""
    from cropaudit.model.download import CACHE_ENV
    from cropaudit.pipelines.audit_pipeline import run_audit
    from cropaudit.pipelines.demo_pipeline import embedded_config
    from cropaudit.rundir import read_table
    from cropaudit.synthetic import write_face_set

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    manifest = write_face_set(tmp_path / "faces", seed=1, subjects_per_group=2)
    cfg = embedded_config().replace(
        manifest={"path": str(manifest)},
        design={"composites_per_pair": 1, "controls": []},
        model={"compare": [f"{server.url}/fail#attempts=2&backoff=0.01", f"{server.url}/ok"]},
    )
    summary = run_audit(cfg, str(tmp_path / "run"), quiet=True, overwrite=True)
    assert summary["all_composites_accounted"]
    n = summary["composites_expected"] // 3
    assert summary["survival_rows"] == 2 * n
    assert summary["dead_letters_by_stage_reason"] == {"predict/http_error": n}
    dead = read_table(str(tmp_path / "run" / "dead_letter")).to_pandas()
    assert dead.element_id.str.endswith(f"#{server.url}/fail").all()
    ok_hits = server.hits["/ok"]
    # rerun: the cache answers every image the endpoint already cropped
    run_audit(cfg, str(tmp_path / "run"), quiet=True, overwrite=True)
    assert server.hits["/ok"] == ok_hits
    rows = read_table(str(tmp_path / "run" / "survival")).to_pandas()
    assert set(rows.model_name) == {"baseline-centre-surround", f"{server.url}/ok"}


def test_a_cropper_named_by_an_installed_entry_point(tmp_path, monkeypatch):
    """``plugin:NAME`` finds a callable that an installed distribution declares in the
    ``cropaudit.croppers`` entry-point group (here a minimal ``.dist-info`` on ``sys.path``)."""
    from cropaudit.model.plugin import ENTRY_POINT_GROUP

    info = tmp_path / "acme_croppers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-croppers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nacme-centred = cropper_plugins:centred\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    image = images(1)[0]
    by_entry_point = load_handler("plugin:acme-centred").load_model()
    by_module = load_handler("plugin:cropper_plugins:centred").load_model()
    got = by_entry_point.crop(image, RATIOS).boxes
    assert got == by_module.crop(image, RATIOS).boxes
    assert (got[1].w, got[1].h) == (60, 60)  # the 1:1 box of an 80x60 image


# -- a hostile endpoint: every request ends in time, with the reason dead-lettered ------------


@pytest.mark.parametrize(
    "path, reason",
    [
        ("/drip", "timeout"),  # one byte every 0.5 s: alive on every read, over the deadline
        ("/endless", "malformed_response"),  # a body that never ends: over the size cap
        ("/huge", "malformed_response"),  # declares 100 MB: refused before reading it
        ("/gzip-bomb", "malformed_response"),  # 20 KB that inflates to 64 MB: stopped at 1 MB
        ("/redirect", "http_error"),  # never followed: the image would not go along
        ("/infinity", "malformed_response"),
        ("/nan", "malformed_response"),
        ("/wrong-count", "malformed_response"),
    ],
)
def test_a_hostile_endpoint_ends_each_request_in_time(server, tmp_path, path, reason):
    model = http(server, path, tmp_path, timeout=1.5, attempts=2).load_model()
    started = time.monotonic()
    (result,) = crop_batch(model, images(1), RATIOS)
    took = time.monotonic() - started
    assert checked(result, 80, 60)[0] == reason, result
    assert took < 2 * 1.5 + 1.5, took  # two whole-request deadlines and a backoff at most
    assert server.hits.get("GET /ok", 0) == 0  # the redirect was not followed
    expected_requests = 2 if reason == "timeout" else 1  # only a timeout is retried
    assert server.hits[path] == expected_requests
    assert not list((tmp_path / "cache").glob("*.json"))  # nothing malformed is cached


def test_a_gzip_encoded_answer_is_decoded(server, tmp_path):
    (result,) = crop_batch(http(server, "/gzip-ok", tmp_path).load_model(), images(1), RATIOS)
    assert checked(result, 80, 60) is None


def test_authentication_comes_from_the_environment_and_stays_out_of_the_record(
    server, tmp_path, monkeypatch
):
    monkeypatch.setenv("CROPAUDIT_TEST_TOKEN", "Bearer s3cret-value")
    spec = (
        f"{server.url}/ok?api_key=k3y-value#auth_header=Authorization&auth_env=CROPAUDIT_TEST_TOKEN"
    )
    cropper = load_handler(spec)
    (result,) = crop_batch(cropper.load_model(), images(1), RATIOS)
    assert checked(result, 80, 60) is None
    assert server.last_headers["Authorization"] == "Bearer s3cret-value"
    described = json.dumps(cropper.describe())
    assert "s3cret" not in described and "k3y" not in described
    assert f"{server.url}/ok?api_key=REDACTED" in described
    monkeypatch.delenv("CROPAUDIT_TEST_TOKEN")
    with pytest.raises(UserError, match="CROPAUDIT_TEST_TOKEN"):
        load_handler(spec)


def test_userinfo_is_sent_as_basic_auth_and_redacted(server, tmp_path):
    import base64

    url = server.url.replace("http://", "http://alice:pa55word@") + "/ok"
    cropper = HttpCropper(url, HttpSettings(attempts=1), str(tmp_path / "cache"))
    (result,) = crop_batch(cropper.load_model(), images(1), RATIOS)
    assert checked(result, 80, 60) is None
    sent = base64.b64decode(server.last_headers["Authorization"].split()[1]).decode()
    assert sent == "alice:pa55word"
    assert cropper.name == server.url.replace("http://", "http://REDACTED@") + "/ok"
    assert "pa55word" not in json.dumps(cropper.describe())
    # a failure's dead letter names the endpoint without the password
    failing = HttpCropper(url.replace("/ok", "/fail"), HttpSettings(attempts=1, backoff=0))
    (result,) = crop_batch(failing.load_model(), images(1), RATIOS)
    assert result.reason == "http_error" and "pa55word" not in str(result)
