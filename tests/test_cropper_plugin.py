"""Black-box croppers: Python callables and an HTTP endpoint, against a loopback server started
here (slow, failing and malformed answers included). Nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from cropaudit.errors import UserError
from cropaudit.model.cropper import checked, crop_batch
from cropaudit.model.plugin import CallableCropper, CropperError, HttpCropper, HttpSettings
from cropaudit.model.registry import load_handler

RATIOS = (0.56, 1.0, 2.0)


def images(n: int, size=(60, 80)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(n)]


class CropServer:
    """A loopback cropping endpoint. Paths: ``/ok`` (centred boxes), ``/slow`` (answers after
    ``delay`` s), ``/flaky`` (503 for the first ``failures`` requests per image, then ok),
    ``/fail`` (always 500), ``/malformed`` (not JSON), ``/bad-request`` (400)."""

    def __init__(self, delay: float = 1.0, failures: int = 2):
        self.delay, self.failures = delay, failures
        self.hits: dict[str, int] = {}
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                url = urllib.parse.urlsplit(self.path)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                asked = urllib.parse.parse_qs(url.query)["aspect_ratios"][0]
                ratios = [float(r) for r in asked.split(",")]
                with server.lock:
                    key = f"{url.path}:{hash(body)}"
                    server.hits[url.path] = server.hits.get(url.path, 0) + 1
                    n = server.hits[key] = server.hits.get(key, 0) + 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(0.05)  # long enough for concurrent requests to overlap
                    if url.path == "/slow":
                        time.sleep(server.delay)
                    if url.path == "/fail" or (url.path == "/flaky" and n <= server.failures):
                        return self._send(500 if url.path == "/fail" else 503, b"busy")
                    if url.path == "/bad-request":
                        return self._send(400, b"no")
                    if url.path == "/malformed":
                        return self._send(200, b"<html>not json</html>")
                    from io import BytesIO

                    from PIL import Image

                    w, h = Image.open(BytesIO(body)).size
                    boxes = [
                        [0, 0, w, min(h, round(ar * w))]
                        if ar < h / w
                        else [0, 0, min(w, round(h / ar)), h]
                        for ar in ratios
                    ]
                    self._send(200, json.dumps({"boxes": boxes}).encode())
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, status, data):
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left, as the slow tests intend

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


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
