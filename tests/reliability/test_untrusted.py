"""Untrusted endpoints, specs, configs, labels and command lines (issue 27): a hostile HTTP
cropper ends in time, secrets in a spec are written nowhere, a config runs no code unless told,
CSV cells cannot become formulas, and a misspelled option stops the command. Each test checks
that nothing outside the command's own files changed and that results equal a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cropaudit import cli
from cropaudit.csvcells import FORMULA_START
from cropaudit.importers import write_manifest
from cropaudit.model.download import CACHE_ENV
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.rundir import read_table
from cropaudit.transforms.manifests import read_manifest
from tests.crop_server import CropServer
from tests.reliability.conftest import face_rows, tiny_config
from tests.reliability.snapshot import folder_digest

REPO = Path(__file__).resolve().parents[2]
#: Columns that name the run rather than the outcome (a different spec, a different hash; a
#: compared cropper's composite ids end in ``#<model_name>``, ``sample_id`` is shared).
RUN_COLUMNS = (
    "composite_id",
    "config_hash",
    "versions",
    "model_name",
    "model_hash",
    "model_source",
)


def outcomes(run: Path, model: str | None = None):
    rows = read_table(str(run / "survival")).to_pandas()
    if model is not None:
        rows = rows[rows.model_name == model]
    rows = rows.drop(columns=list(RUN_COLUMNS)).sort_values(["sample_id", "position"])
    return rows.reset_index(drop=True).to_json()


def table_json(run: Path) -> str:
    """Every row and column (nulls and NaN alike), in composite order."""
    rows = read_table(str(run / "survival")).to_pandas().sort_values("composite_id")
    return rows.reset_index(drop=True).to_json()


@pytest.fixture
def server():
    with CropServer(drip=0.5) as s:
        yield s


@pytest.mark.slow
def test_a_hostile_endpoint_dead_letters_and_the_rest_equals_a_clean_run(
    face_set, server, tmp_path, monkeypatch
):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    hostile = {
        "/drip": "timeout",
        "/endless": "malformed_response",
        "/huge": "malformed_response",
        "/gzip-bomb": "malformed_response",
        "/redirect": "http_error",
        "/infinity": "malformed_response",
        "/wrong-count": "malformed_response",
    }
    specs = [f"{server.url}{p}#timeout=1&attempts=1&concurrency=8" for p in hostile]
    before = folder_digest(tmp_path, skip=(tmp_path / "out", tmp_path / "cache"))
    cfg = tiny_config(face_set).replace(model={"spec": "baseline", "compare": specs})
    summary = run_audit(cfg, str(tmp_path / "out" / "run"), quiet=True)  # ends: deadlines
    n = summary["composites_expected"] // (1 + len(specs))
    assert summary["dead_letters_by_stage_reason"] == {
        f"predict/{r}": n * list(hostile.values()).count(r) for r in set(hostile.values())
    }
    assert server.hits.get("GET /ok", 0) == 0  # the redirect was not followed
    assert folder_digest(tmp_path, skip=(tmp_path / "out", tmp_path / "cache")) == before
    clean = run_audit(tiny_config(face_set), str(tmp_path / "out" / "clean"), quiet=True)
    assert clean["survival_rows"] == summary["survival_rows"] == n
    assert outcomes(tmp_path / "out" / "run") == outcomes(tmp_path / "out" / "clean")


@pytest.mark.slow
def test_a_signal_ends_a_run_blocked_on_a_dripping_endpoint_and_cleans_up(
    face_set, server, tmp_path
):
    cfg = tiny_config(face_set).replace(model={"spec": f"{server.url}/drip#timeout=600&attempts=1"})
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    out = tmp_path / "out"
    env = dict(os.environ, **{CACHE_ENV: str(tmp_path / "cache")})
    before = folder_digest(tmp_path, skip=(out, tmp_path / "cache", tmp_path / "log"))
    cmd = [sys.executable, "-m", "cropaudit", "run", str(tmp_path / "c.toml"), "--out", str(out)]
    with open(tmp_path / "log", "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while not server.hits.get("/drip") and time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "log").read_text()
                time.sleep(0.2)
            assert server.hits.get("/drip"), "the run never called the endpoint"
            time.sleep(1)
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            rc = proc.wait(timeout=60)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 143, (tmp_path / "log").read_text()[-2000:]
    assert took < 10, took  # a few seconds, not the 600 s deadline
    left = sorted(p.name for p in out.rglob("*")) if out.exists() else []
    assert not [n for n in left if n.startswith("beam-temp-") or n.endswith(".lock")], left
    assert not (out / "_SUCCESS").exists()
    assert folder_digest(tmp_path, skip=(out, tmp_path / "cache", tmp_path / "log")) == before


@pytest.mark.slow
def test_secrets_in_a_spec_are_written_nowhere_and_change_no_result(
    face_set, server, tmp_path, monkeypatch, capsys
):
    from cropaudit.pipelines.stats_pipeline import run_stats
    from cropaudit.report import build_report

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    host = server.url.removeprefix("http://")
    key_spec = f"{server.url}/ok?api_key=SEKRIT-KEY&sig=SEKRIT-SIG&v=2"
    userinfo_spec = f"http://alice:SEKRIT-PASS@{host}/fail#attempts=1"
    before = folder_digest(tmp_path, skip=(tmp_path / "out", tmp_path / "cache"))

    def audit(name: str, key: str) -> Path:
        spec = key_spec.replace("SEKRIT-KEY", key)
        cfg = tiny_config(face_set).replace(model={"spec": spec, "compare": [userinfo_spec]})
        run = tmp_path / "out" / name
        run_audit(cfg, str(run / "run"))
        run_stats([str(run / "run")], str(run / "stats"), replicates=50, seed=1)
        build_report(str(run / "run"), str(run / "report.html"), stats_dir=str(run / "stats"))
        return run

    secret = audit("secret", "SEKRIT-KEY")
    printed = capsys.readouterr()
    leaks = [
        str(p.relative_to(secret))
        for p in secret.rglob("*")
        if p.is_file() and b"SEKRIT" in p.read_bytes()
    ]
    assert leaks == [] and "SEKRIT" not in printed.out + printed.err
    rows = read_table(str(secret / "run" / "survival")).to_pandas()
    assert set(rows.model_name) == {f"{server.url}/ok?api_key=REDACTED&sig=REDACTED&v=2"}
    dead = read_table(str(secret / "run" / "dead_letter")).to_pandas()
    assert len(dead) and dead.element_id.str.endswith(f"#http://REDACTED@{host}/fail").all()
    for page in (secret / "report.html", secret / "stats" / "report.html"):
        assert str(tmp_path) not in page.read_text()  # paths relative to the page
    # another key, the same recorded experiment: equal tables, equal hashes
    other = audit("other", "ANOTHER-KEY")
    assert table_json(secret / "run") == table_json(other / "run")
    summaries = [
        json.loads((run / "run" / "run_summary.json").read_text()) for run in (secret, other)
    ]
    assert summaries[0]["config_hash"] == summaries[1]["config_hash"]
    assert summaries[0]["survival_table_sha256"] == summaries[1]["survival_table_sha256"]
    assert folder_digest(tmp_path, skip=(tmp_path / "out", tmp_path / "cache")) == before


PLUGIN = """
from pathlib import Path
Path("IMPORTED").write_text("the config ran this")
def crop(image, ratios):
    return [(0, 0, 8, 8) for _ in ratios]
"""


def test_a_config_runs_no_code_unless_told(face_set, tmp_path, monkeypatch, capsys):
    """A downloaded config naming a plugin that sits in the current folder: ``run`` refuses it
    without --allow-plugins, and even with it the current folder is not searched."""
    work = tmp_path / "downloads"
    work.mkdir()
    (work / "evil_cropper.py").write_text(PLUGIN)
    cfg = tiny_config(face_set).replace(model={"spec": "plugin:evil_cropper:crop"})
    (work / "c.toml").write_text(cfg.to_toml())
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend("")  # as `python -m cropaudit` does
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    before = folder_digest(tmp_path)
    assert cli.main(["run", "c.toml", "--out", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-plugins" in err, err
    assert cli.main(["run", "c.toml", "--out", "out", "--allow-plugins"]) == 2
    assert "cannot import evil_cropper" in capsys.readouterr().err
    assert cli.main(["demo", "--out", "d", "--models", "plugin:evil_cropper:crop"]) == 2
    assert cli.main(["saliency", "x.png", "--model", "plugin:evil_cropper:crop"]) == 2
    assert "--allow-plugins" in capsys.readouterr().err
    assert "evil_cropper" not in sys.modules and not (work / "IMPORTED").exists()
    assert folder_digest(tmp_path) == before  # refused before anything was written
    # validate names the code without running it
    assert cli.main(["validate", "c.toml"]) == 0
    shown = capsys.readouterr().out
    assert "runs code: plugin:evil_cropper:crop: module evil_cropper" in shown
    assert "evil_cropper" not in sys.modules and not (work / "IMPORTED").exists()
    # the user's allow list or an explicit plugin path are the ways to say so
    allow = tmp_path / "config" / "cropaudit" / "allowed-plugins"
    allow.parent.mkdir(parents=True)
    allow.write_text("evil_cropper  # I wrote this one\n")
    from cropaudit.model.plugin import require_allowed

    require_allowed(["plugin:evil_cropper:crop"], allow=False)  # no error: listed


def test_csv_cells_cannot_become_formulas_and_read_back_unchanged(face_set, tmp_path, capsys):
    labels = {
        "light": '=HYPERLINK("http://x","y")',
        "dark": "+cmd|' /C calc'!A0",
        "short": "@SUM(1+1)",
        "long": "-2+3",
    }
    rows = face_rows(face_set)
    for r in rows:
        r["tone"], r["hair"] = labels[r["tone"]], labels[r["hair"]]
        r["score"] = "-1.5"  # a negative number stays a number
    rows[0]["image_uri"] = "\t=missing.jpg"  # a dead letter whose cells start with a tab
    manifest = tmp_path / "in" / "m.csv"
    manifest.parent.mkdir()
    write_manifest(rows, str(manifest))
    before = folder_digest(tmp_path, skip=(tmp_path / "out",))
    out = tmp_path / "out" / "faces.csv"
    argv = ["manifest", "detect-faces", str(manifest), "--out", str(out), "--attributes", "tone"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    for path in (manifest, out, Path(f"{out}.dead_letter.csv")):
        import csv

        with open(path, newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert not [c for c in cells if c[:1] in FORMULA_START and c != "-1.5"], path
        assert "-1.5" in cells or path.name.endswith("dead_letter.csv")
    assert folder_digest(tmp_path, skip=(tmp_path / "out",)) == before
    # cropaudit reads its own CSV back to the labels it was given: the same experiment
    back = {r["image_id"]: (r["tone"], r["hair"]) for r in read_manifest(str(out)).rows}
    assert back == {r["image_id"]: (r["tone"], r["hair"]) for r in rows}


def _positionals(command) -> list[str]:
    """Values for the command's positional arguments and required options."""
    out = []
    for a in command.arguments:
        if a.options.get("required"):
            out += [a.flags[0], "1" if a.options.get("type") in (int, float) else "x"]
        elif not a.flags[0].startswith("-"):
            choices = a.options.get("choices")
            out.append(sorted(choices)[0] if choices else "x")
    return out


def _commands():
    import importlib

    for name in cli.COMMANDS:
        command = importlib.import_module(f"cropaudit.commands.{name}_command").COMMAND
        for c in command.actions or (command,):
            path = [name, c.name] if command.actions else [name]
            yield path, c


def _misspelled(flag: str) -> str:
    body = flag[2:]
    return "--" + body[:-2] + body[-1] + body[-2]  # the last two letters swapped


def test_a_misspelled_option_stops_every_command_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = folder_digest(tmp_path)
    checked = 0
    for path, command in _commands():
        flags = [f for a in command.arguments for f in a.flags if f.startswith("--")]
        typos = [(_misspelled(f), f) for f in flags[:1]]
        if command.pipeline_args:
            typos.append(("--direct_num_worker", "--direct_num_workers"))
        for typo, meant in typos:
            argv = [*path, *_positionals(command), typo, "1"]
            assert cli.main(argv) == 2, argv
            err = capsys.readouterr().err.strip().splitlines()
            assert err == [
                f"cropaudit {path[0]}: error: unknown option {typo}; did you mean {meant}?"
            ]
            checked += 1
    assert checked >= 12
    assert folder_digest(tmp_path) == before
    # Beam's own options still pass, and unknown ones are caught after them too
    from cropaudit.pipelines.runners import unknown_pipeline_args

    assert unknown_pipeline_args(["--runner", "direct", "--direct_num_workers=2"]) == []
    assert unknown_pipeline_args(["--direct_num_workers", "2", "--replicats", "5"]) == [
        "--replicats"
    ]
