"""The model catalogue: fetch, verify and cache by name, against a loopback HTTP server only."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import pickle
import threading
from pathlib import Path

import pytest

from cropaudit.errors import UserError
from cropaudit.model.catalogue import BUILTIN, CatalogueEntry, catalogue, load_user_catalogue
from cropaudit.model.download import cache_path, fetch, fetch_entry, resolve_cache_dir
from tests.conftest import shared_file

VXM = "data/fastgaze/fastgaze.vxm"
FASTGAZE = BUILTIN["fastgaze"]


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.body`` under paths that choose a failure: /ok, /flipped, /short, ..."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        body = self.server.body
        mode = self.path.split("/")[1]
        if mode in ("500", "404"):
            self.send_error(int(mode))
            return
        if mode == "flipped":
            body = body[:1000] + bytes([body[1000] ^ 0x01]) + body[1001:]
        self.send_response(200)
        if mode != "nolength":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "short":  # promise the whole body, send half, hang up
            body = body[: len(body) // 2]
        elif mode == "nolength":  # no Content-Length, and one byte too many
            body = body + b"x"
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def vxm_bytes() -> bytes:
    return shared_file(VXM).read_bytes()


@pytest.fixture(scope="module")
def server(vxm_bytes):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.body, httpd.requests = vxm_bytes, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No user settings leak in, and no proxy can take a loopback request elsewhere."""
    for var in ("CROPAUDIT_CACHE", "CROPAUDIT_OFFLINE", "CROPAUDIT_CATALOGUE"):
        monkeypatch.delenv(var, raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _url(server, mode: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{mode}/fastgaze.vxm"


def _entry(server, mode: str = "ok", **changes) -> CatalogueEntry:
    server.requests.clear()
    fields = dict(kind="fastgaze", sha256=FASTGAZE.sha256, size=FASTGAZE.size, licence="x")
    return CatalogueEntry(name="fg-test", source=_url(server, mode), **{**fields, **changes})


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_real_file_matches_builtin_entry(vxm_bytes):
    assert len(vxm_bytes) == FASTGAZE.size
    assert hashlib.sha256(vxm_bytes).hexdigest() == FASTGAZE.sha256
    assert "/image-crop-analysis/" in FASTGAZE.source and FASTGAZE.source.endswith(".vxm")


def test_fetch_verifies_and_caches(server, tmp_path, vxm_bytes):
    entry = _entry(server)
    path = fetch_entry(entry, str(tmp_path))
    assert path == cache_path(entry, str(tmp_path)) == cache_path(FASTGAZE, str(tmp_path))
    assert Path(path).read_bytes() == vxm_bytes
    assert _files(tmp_path) == [Path(path)]  # no temporary file left behind
    assert len(server.requests) == 1
    assert fetch_entry(entry, str(tmp_path)) == path  # second fetch: from the cache
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("mode", "changes", "message"),
    [
        ("flipped", {}, f"expected sha256 {FASTGAZE.sha256}, got "),
        ("short", {}, "truncated download"),
        ("ok", {"size": FASTGAZE.size - 1}, "wrong size"),
        ("nolength", {}, "wrong size"),
        ("500", {}, "HTTP 500"),
        ("404", {}, "HTTP 404"),
    ],
)
def test_bad_download_is_refused_and_leaves_nothing(server, tmp_path, mode, changes, message):
    with pytest.raises(UserError, match=message) as err:
        fetch_entry(_entry(server, mode, **changes), str(tmp_path))
    assert _url(server, mode) in str(err.value)
    assert _files(tmp_path) == []
    assert len(server.requests) == 1


def test_corrupted_cache_is_refused(server, tmp_path):
    path = Path(fetch_entry(_entry(server), str(tmp_path)))
    data = bytearray(path.read_bytes())
    data[5] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="delete it"):
        fetch_entry(_entry(server), str(tmp_path))
    assert server.requests == []


@pytest.mark.parametrize("by_env", [False, True])
def test_offline_names_the_file_and_place(server, tmp_path, monkeypatch, by_env):
    if by_env:
        monkeypatch.setenv("CROPAUDIT_OFFLINE", "1")
    entry = _entry(server)
    with pytest.raises(UserError, match="offline") as err:
        fetch_entry(entry, str(tmp_path), offline=not by_env)
    for part in (entry.source, entry.sha256, cache_path(entry, str(tmp_path))):
        assert part in str(err.value)
    assert server.requests == []
    assert _files(tmp_path) == []


def test_cache_dir_resolution(monkeypatch, tmp_path):
    assert resolve_cache_dir() == str(tmp_path / "home" / ".cache" / "cropaudit" / "models")
    monkeypatch.setenv("CROPAUDIT_CACHE", "gs://bucket/models")
    assert resolve_cache_dir() == "gs://bucket/models"
    assert resolve_cache_dir("/x") == "/x"


def _write_toml(tmp_path: Path, body: str) -> str:
    path = tmp_path / "catalogue.toml"
    path.write_text(body)
    return str(path)


def test_user_catalogue_by_name(server, tmp_path, monkeypatch):
    toml = _write_toml(
        tmp_path,
        f'[models.mine]\nkind = "fastgaze"\nsource = "{_url(server, "ok")}"\n'
        f'sha256 = "{FASTGAZE.sha256}"\nsize = {FASTGAZE.size}\nlicence = "Apache-2.0"\n',
    )
    server.requests.clear()
    cache = tmp_path / "cache"
    path = fetch("mine", str(cache), catalogue_file=toml)
    assert Path(path).is_file() and len(server.requests) == 1
    monkeypatch.setenv("CROPAUDIT_CATALOGUE", toml)
    assert catalogue()["mine"].licence == "Apache-2.0"
    assert set(BUILTIN) <= set(catalogue())
    with pytest.raises(UserError, match="unknown model 'nope'"):
        fetch("nope", str(cache))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[models.m]\nkind = "keras"\nsource = "/m"\nsha256 = "{h}"\nlicense = "MIT"\n',
            "'license'",
        ),
        ('[models.m]\nkind = "keras"\nsource = "/m"\nsha256 = "{h}"\n[extra]\n', "'extra'"),
        ('[models.fastgaze]\nkind = "keras"\nsource = "/m"\nsha256 = "{h}"\n', "built-in"),
        ('[models.m]\nkind = "onnx"\nsource = "/m"\nsha256 = "{h}"\n', "kind"),
        ('[models.m]\nkind = "keras"\nsource = "/m"\nsha256 = "abc"\n', "sha256"),
        ('[models.m]\nkind = "keras"\nsource = "https://x/m.keras"\nsha256 = "{h}"\n', "size"),
        ('[models.m]\nkind = "keras"\nsha256 = "{h}"\n', "source"),
    ],
)
def test_user_catalogue_rejects(tmp_path, body, message):
    path = _write_toml(tmp_path, body.replace("{h}", "0" * 64))
    with pytest.raises(UserError, match=message):
        load_user_catalogue(path)


def test_folder_model_is_verified_in_place(tmp_path):
    from cropaudit.model.keras_model import content_hash

    folder = tmp_path / "msinet"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "v.data").write_bytes(b"weights")
    good = content_hash(str(folder))
    # the recipe written out: sha256 over each file's relative name and sha256, names sorted
    recipe = hashlib.sha256()
    for rel, data in (("/saved_model.pb", b"graph"), ("/variables/v.data", b"weights")):
        recipe.update(rel.encode() + hashlib.sha256(data).digest())
    assert good == recipe.hexdigest()
    entry = CatalogueEntry(name="msinet", kind="keras", source=str(folder) + "/", sha256=good)
    assert fetch_entry(entry, str(tmp_path / "cache")) == entry.source
    sized = CatalogueEntry(name="msinet", kind="keras", source=str(folder), sha256=good, size=12)
    fetch_entry(sized, str(tmp_path / "cache"))
    (folder / "variables" / "v.data").write_bytes(b"weightz")
    with pytest.raises(UserError, match=f"expected content hash {good}"):
        fetch_entry(entry, str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()


def test_load_handler_by_name(server, tmp_path):
    from cropaudit.model.registry import from_catalogue, load_handler

    cache = str(tmp_path / "cache")
    fetch_entry(_entry(server), cache)  # the builtin entry's cache path, filled from loopback
    handler = load_handler("fastgaze", cache_dir=cache, offline=True)
    assert handler.name == "fastgaze"
    assert handler.content_hash == FASTGAZE.sha256 == handler._inner.content_hash
    assert handler.source == FASTGAZE.source
    assert handler.describe()["model_hash"] == FASTGAZE.sha256
    assert hasattr(handler, "preprocess_jpeg")  # FastGaze's extra reaches through the wrapper
    with pytest.raises(UserError, match="neither a catalogue name"):
        load_handler("no-such-model")

    # A worker without the file fetches it once in load_model, never per element.
    worker = pickle.loads(pickle.dumps(from_catalogue(_entry(server), cache_dir=cache)))
    Path(cache_path(FASTGAZE, cache)).unlink()
    server.requests.clear()
    worker._inner.load_model = lambda: "model"  # the TF build is the FastGaze tests' business
    assert worker.load_model() == "model" and worker.load_model() == "model"
    assert len(server.requests) == 1 and Path(cache_path(FASTGAZE, cache)).is_file()


def _cli(args: list[str]) -> int:
    from cropaudit.cli import add_command
    from cropaudit.commands.catalogue_command import ACTIONS

    parser = argparse.ArgumentParser()
    actions = parser.add_subparsers(dest="action", required=True)
    for action in ACTIONS:
        add_command(actions, action)
    parsed = parser.parse_args(args)
    return parsed.func(parsed)


def test_cli_list_fetch_info(server, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert _cli(["list"]) == 0
    assert "fastgaze" in capsys.readouterr().out
    with pytest.raises(UserError, match="offline"):
        _cli(["fetch", "fastgaze", "--cache", cache, "--offline"])
    assert _cli(["info", "fastgaze", "--cache", cache]) == 0
    assert "cropaudit model fetch fastgaze" in capsys.readouterr().out
    fetch_entry(_entry(server), cache)
    assert _cli(["fetch", "fastgaze", "--cache", cache, "--offline"]) == 0
    assert capsys.readouterr().out.strip() == cache_path(FASTGAZE, cache)
    assert _cli(["info", "fastgaze", "--cache", cache]) == 0
    out = capsys.readouterr().out
    assert FASTGAZE.sha256 in out and "Apache-2.0" in out and "Theis" in out
    assert "layers:" in out and "conv 3x3" in out
    assert _cli(["info", cache_path(FASTGAZE, cache)]) == 0
    assert "catalogue: fastgaze" in capsys.readouterr().out
