"""Bad manifests: whole-file problems stop before any pipeline starts, with the problem named;
bad rows become dead letters while the rest of the run completes."""

from __future__ import annotations

import csv
import http.server
import json
import threading
from pathlib import Path

import pytest

from cropaudit.cli import main
from cropaudit.errors import ManifestError
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.rundir import read_table
from tests.reliability.conftest import face_rows, tiny_config


def rewrite(face_set: Path, tmp_path: Path, edit) -> Path:
    rows, fields = edit(face_rows(face_set))
    out = tmp_path / "manifest.csv"
    # written by hand: one row carries a raw non-UTF-8 byte (surrogate-escaped)
    with open(out, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return out


def test_missing_columns_fail_before_the_pipeline_starts(face_set, tmp_path):
    m = rewrite(
        face_set,
        tmp_path,
        lambda rows: (
            [{k: v for k, v in r.items() if k != "hair"} for r in rows],
            ["image_id", "image_uri", "subject_id", "tone"],
        ),
    )
    with pytest.raises(ManifestError, match="hair"):
        run_audit(tiny_config(m), str(tmp_path / "out"), quiet=True)
    assert not (tmp_path / "out").exists()


def test_empty_or_too_small_groups_are_named(face_set, tmp_path):
    m = rewrite(
        face_set,
        tmp_path,
        lambda rows: ([r for r in rows if r["subject_id"] != "dark-long-01"], list(rows[0])),
    )
    with pytest.raises(ManifestError, match="'dark/long' has 1 subject"):
        run_audit(tiny_config(m, controls=["same_group"]), str(tmp_path / "a"), quiet=True)
    with pytest.raises(ManifestError, match="'dark/curly'"):
        run_audit(
            tiny_config(m, pairs=[["dark/curly", "light/long"]]), str(tmp_path / "b"), quiet=True
        )


def test_bad_rows_become_dead_letters_and_the_run_completes(face_set, tmp_path):
    def edit(rows):
        template = dict(rows[0])
        extra = [
            {**template, "image_id": rows[1]["image_id"]},  # duplicate image id
            {**template, "image_id": "unknown-label", "tone": "green"},  # not an allowed label
            {**template, "image_id": "huge", "subject_id": "x" * 100_000},  # huge field
            {**template, "image_id": "no-tone", "tone": ""},  # missing field
            {**template, "image_id": "latin1", "subject_id": "caf\udce9"},  # non-UTF-8 byte
        ]
        return rows + extra, list(rows[0])

    m = rewrite(face_set, tmp_path, edit)
    config = tiny_config(m).replace(
        groups={"labels": {"tone": ["light", "dark"], "hair": ["short", "long"]}}
    )
    summary = run_audit(config, str(tmp_path / "out"), quiet=True)
    dead = read_table(str(tmp_path / "out" / "dead_letter")).to_pandas()
    manifest_dead = dead[dead.stage == "manifest"]
    assert len(manifest_dead) == 5 == summary["manifest_dead_lettered"]
    assert set(manifest_dead.reason) == {
        "duplicate_image_id",
        "unknown_label",
        "field_too_long",
        "empty_field",
        "bad_encoding",
    }
    assert summary["survival_rows"] == summary["composites_expected"] == 24


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records every request and answers 404: the model is never meant to arrive."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def model_server(tmp_path, monkeypatch):
    """A catalogue model ``remote`` served by a loopback HTTP server that records requests."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.requests = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    catalogue = tmp_path / "catalogue.toml"
    catalogue.write_text(
        f'[models.remote]\nkind = "fastgaze"\nsource = "http://127.0.0.1:{port}/m.vxm"\n'
        f'sha256 = "{"0" * 64}"\nsize = 1000\n'
    )
    monkeypatch.setenv("CROPAUDIT_CATALOGUE", str(catalogue))
    monkeypatch.setenv("CROPAUDIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CROPAUDIT_OFFLINE", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_cheap_checks_fail_before_the_model_is_downloaded(face_set, tmp_path, model_server, capsys):
    def run(manifest: Path, out: Path) -> str:
        config = tiny_config(manifest).replace(model={"spec": "remote"})
        path = tmp_path / "config.toml"
        path.write_text(config.to_toml())
        assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
        return capsys.readouterr().err

    missing = tmp_path / "no-such-manifest.csv"
    assert f"manifest not found: {missing}" in run(missing, tmp_path / "a")
    assert model_server.requests == [] and not (tmp_path / "a").exists()

    taken = tmp_path / "stats-output"
    taken.mkdir()
    (taken / ".cropaudit-output.json").write_text(json.dumps({"kind": "stats"}))
    assert "holds a cropaudit stats output" in run(face_set, taken)
    assert model_server.requests == []

    # the control: with a good manifest and folder the run does ask for the model
    assert "HTTP 404" in run(face_set, tmp_path / "b")
    assert model_server.requests == ["/m.vxm"]
