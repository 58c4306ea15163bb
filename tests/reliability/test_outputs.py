"""Nothing a user types may destroy data or quietly change a result (issue 13, outputs half).

Each case runs the command as a user would (the CLI, in-process or as a real subprocess for
signals) and checks, by a checksum of every file before and after, that nothing outside the
command's own files changed, and where the command succeeds that its result equals a clean run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropaudit.cli import main
from cropaudit.errors import UserError
from cropaudit.model.baseline import CentreSurroundHandler
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.pipelines.stats_pipeline import UNVERIFIED_KEY
from cropaudit.rundir import StatsDir, locks, ownership, read_table, table_hash
from tests.reliability.conftest import tiny_config, tree_digest
from tests.services import canonical_estimates


@pytest.fixture(scope="module")
def clean(face_set, tmp_path_factory):
    """A clean run of the tiny config, its config file, and its statistics (20 replicates)."""
    base = tmp_path_factory.mktemp("clean")
    config = tiny_config(face_set)
    (base / "cfg.toml").write_text(config.to_toml())
    summary = run_audit(config, str(base / "run"), quiet=True)
    assert main(["stats", str(base / "run"), "--out", str(base / "stats"), *STATS]) == 0
    return base, summary


STATS = ["--replicates", "20", "--criterion", "point"]


def copy_run(clean, tmp_path: Path) -> Path:
    base, _ = clean
    return Path(shutil.copytree(base / "run", tmp_path / "run"))


def debris(root: Path) -> list[str]:
    """Temporary files and folders a writer left below ``root``."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.name.startswith("beam-temp-")
        or ".tmp-" in p.name
        or p.name == locks.LOCK_NAME
        or (p.is_file() and p.stat().st_size == 0 and p.name != "_SUCCESS")
    )


# -- data destroyed ----------------------------------------------------------------------------


def test_report_onto_a_run_folder_is_refused_and_the_run_is_intact(clean, tmp_path, capsys):
    run = copy_run(clean, tmp_path)
    stats = clean[0] / "stats"
    before = tree_digest(tmp_path)
    rc = main(["report", str(run), "--stats", str(stats), "--out", str(run), "--quiet"])
    assert rc == 2 and "is a folder" in capsys.readouterr().err
    assert tree_digest(tmp_path) == before


def test_report_replaces_only_its_own_html(clean, tmp_path, capsys):
    run, stats = clean[0] / "run", clean[0] / "stats"
    foreign = tmp_path / "notes.html"
    foreign.write_text("<html>my notes</html>")
    before = tree_digest(tmp_path)
    args = ["report", str(run), "--stats", str(stats), "--gallery", "0", "--quiet"]
    assert main([*args, "--out", str(foreign)]) == 2
    assert "not written by this cropaudit command" in capsys.readouterr().err
    assert tree_digest(tmp_path) == before
    own = tmp_path / "report.html"
    assert main([*args, "--out", str(own)]) == 0
    first = own.read_text()
    assert ownership.html_mark("report") in first
    assert main([*args, "--out", str(own)]) == 0  # its own file: replaced
    assert own.read_text() == first
    # a statistics page is not a run report
    assert main([*args, "--out", str(stats / "report.html")]) == 2


def test_manifest_files_and_overlays_are_replaced_only_with_overwrite(tmp_path, capsys):
    """Files that cannot carry a mark (a CSV manifest, a PNG overlay) are never replaced
    silently: the command refuses before it does any work, and ``--overwrite`` replaces them."""
    from PIL import Image

    photos = tmp_path / "utk"
    photos.mkdir()
    for name in ("30_0_1_2017.jpg", "31_1_0_2017.jpg"):
        Image.new("RGB", (64, 64), (120, 90, 60)).save(photos / name, format="JPEG")
    mine = tmp_path / "mine.csv"
    mine.write_text("my own manifest\n")
    overlay = tmp_path / "mine.png"
    overlay.write_bytes(b"not yours")
    before = tree_digest(tmp_path)
    imp = ["manifest", "import", "utkface", str(photos), "--out", str(mine)]
    detect = ["manifest", "detect-faces", str(mine), "--out", str(mine), "--attributes", "race"]
    image = str(photos / "30_0_1_2017.jpg")
    draw = ["saliency", image, "--model", "baseline", "--overlay", str(overlay)]
    for argv in (imp, detect, draw, [*imp[:5], str(tmp_path)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "pass --overwrite" in err or "is a folder" in err, err
    assert tree_digest(tmp_path) == before
    assert main([*imp, "--overwrite"]) == 0
    written = mine.read_text().splitlines()
    assert len(written) == 3 and "31_1_0_2017.jpg" in written[2]  # header + the two photos
    assert main([*draw, "--overwrite"]) == 0
    assert overlay.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_into_a_folder_with_foreign_files_below(clean, tmp_path, capsys):
    base, summary = clean
    out = tmp_path / "X"
    (out / "survival").mkdir(parents=True)
    (out / "survival" / "notes.txt").write_text("keep")
    (out / "dead_letter" / "deep").mkdir(parents=True)
    (out / "dead_letter" / "deep" / "more.txt").write_text("keep too")
    before = tree_digest(tmp_path)
    run = ["run", str(base / "cfg.toml"), "--out", str(out), "--quiet"]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert tree_digest(tmp_path) == before

    assert main([*run, "--overwrite"]) == 0
    after = tree_digest(tmp_path)
    assert {k: after[k] for k in before} == before  # the foreign files, untouched
    published = json.loads((out / "run_summary.json").read_text())
    assert published["survival_table_sha256"] == summary["survival_table_sha256"]
    assert ownership.read_owner(str(out))["kind"] == "run"
    assert not debris(out)

    # a rerun over its own run replaces its files and still keeps the foreign ones
    (out / "survival" / "part-00000-of-00001.parquet").write_bytes(b"")  # 0-byte debris
    assert main([*run, "--overwrite"]) == 0
    again = tree_digest(tmp_path)
    assert {k: again[k] for k in before} == before
    assert not debris(out)


@pytest.mark.parametrize(
    "name, message",
    [
        ("config.toml", "config.toml was not written by cropaudit"),  # a run's file name
        ("survival/mine.parquet", "would be read as part of its table"),  # would join the table
    ],
)
def test_foreign_files_a_run_would_replace_or_read_are_refused(
    clean, tmp_path, capsys, name, message
):
    base, _ = clean
    out = tmp_path / "X"
    (out / name).parent.mkdir(parents=True)
    shutil.copy(next((base / "run" / "survival").glob("*.parquet")), out / name)
    before = tree_digest(tmp_path)
    assert main(["run", str(base / "cfg.toml"), "--out", str(out), "--overwrite", "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert tree_digest(tmp_path) == before


def test_stats_does_not_replace_an_output_without_overwrite(clean, tmp_path, capsys):
    base, _ = clean
    out = tmp_path / "stats"
    shutil.copytree(base / "stats", out)
    (out / "plots" / "my-figure.png").write_bytes(b"mine")
    (out / "notes.txt").write_text("mine")
    before = tree_digest(tmp_path)
    args = ["stats", str(base / "run"), "--out", str(out), *STATS]
    assert main(args) == 2
    assert "already holds a stats output" in capsys.readouterr().err
    assert tree_digest(tmp_path) == before

    assert main([*args, "--overwrite"]) == 0
    after = tree_digest(tmp_path)
    for name in ("plots/my-figure.png", "notes.txt"):
        assert after[f"stats/{name}"] == before[f"stats/{name}"]
    fresh, earlier = StatsDir(str(out)).estimates(), StatsDir(str(base / "stats")).estimates()
    assert canonical_estimates(fresh).equals(canonical_estimates(earlier))


def test_stats_into_a_run_folder_is_refused_even_with_overwrite(clean, tmp_path, capsys):
    run = copy_run(clean, tmp_path)
    before = tree_digest(tmp_path)
    assert main(["stats", str(run), "--out", str(run), "--overwrite", *STATS]) == 2
    assert "holds a cropaudit run output" in capsys.readouterr().err
    assert tree_digest(tmp_path) == before


def test_demo_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    before = tree_digest(tmp_path)
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert tree_digest(tmp_path) == before


def test_atomic_writer_never_removes_a_folder(tmp_path):
    from cropaudit import fileio

    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "a.txt").write_text("keep")
    before = tree_digest(tmp_path)
    with pytest.raises(UserError, match="is a folder"):
        fileio.write_atomic(str(tmp_path / "target"), b"x")
    assert tree_digest(tmp_path) == before


# -- locks and temporary files -----------------------------------------------------------------


def start_run(face_set: Path, tmp_path: Path, out: Path) -> subprocess.Popen:
    """A real ``cropaudit run`` (large enough to take a while) in a subprocess; returns once
    its Beam sinks exist, i.e. mid-run."""
    cfg = tmp_path / "big.toml"
    cfg.write_text(tiny_config(face_set, composites_per_pair=60).to_toml())
    proc = subprocess.Popen(
        [sys.executable, "-m", "cropaudit", "run", str(cfg), "--out", str(out), "--quiet"],
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while not list(out.rglob("beam-temp-*")):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the run never started writing: {proc.communicate()[1][-3000:]}")
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize(
    "sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_interrupted_run_removes_its_temporary_files(face_set, tmp_path, capsys, sig, code):
    out = tmp_path / "run"
    proc = start_run(face_set, tmp_path, out)
    if sig == signal.SIGINT:  # while it runs, a second run into the same place fails at once
        started = time.monotonic()
        cfg = tmp_path / "cfg.toml"
        cfg.write_text(tiny_config(face_set).to_toml())
        assert main(["run", str(cfg), "--out", str(out), "--overwrite", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"pid {proc.pid}" in err and "cropaudit run reliability" in err, err
        assert time.monotonic() - started < 30  # not once the first run ends
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr[-3000:]
    assert not debris(out), debris(out)
    assert not (out / "_SUCCESS").exists()


def test_killed_run_leaves_no_lock_and_the_rerun_removes_its_debris(face_set, clean, tmp_path):
    out = tmp_path / "run"
    proc = start_run(face_set, tmp_path, out)
    proc.kill()  # SIGKILL: nothing runs on the way out
    proc.communicate(timeout=60)
    assert debris(out)  # beam-temp folders and the lock file were left behind
    summary = run_audit(tiny_config(face_set), str(out), quiet=True, overwrite=True)
    assert summary["survival_table_sha256"] == clean[1]["survival_table_sha256"]
    assert not debris(out)


def test_failed_run_removes_its_temporary_files(face_set, tmp_path):
    class Broken(CentreSurroundHandler):
        def load_model(self):
            raise RuntimeError("the model cannot load")

    out = tmp_path / "run"
    with pytest.raises(Exception, match="the model cannot load"):
        run_audit(tiny_config(face_set), str(out), quiet=True, handler=Broken())
    assert not debris(out) and not (out / "_SUCCESS").exists()


def test_lock_names_its_holder_and_a_dead_holder_does_not_block(tmp_path):
    folder = str(tmp_path / "out")
    with locks.exclusive(folder, "cropaudit run first") as holder:
        busy = f"`cropaudit run first` \\(pid {holder.pid} on "
        with pytest.raises(UserError, match=busy), locks.exclusive(folder, "cropaudit run second"):
            pass
    assert not (tmp_path / "out" / locks.LOCK_NAME).exists()  # released, file gone
    dead = locks.Holder(2**22 + 7, holder.host, "2020-01-01T00:00:00Z", "cropaudit run dead")
    (tmp_path / "out" / locks.LOCK_NAME).write_bytes(dead.to_bytes())  # left by a killed run
    with locks.exclusive(folder, "cropaudit run next") as me:
        assert me.pid == os.getpid()


# -- results changed without a word ------------------------------------------------------------


def _copied_part(run: Path) -> None:
    part = next((run / "survival").glob("*.parquet"))
    shutil.copy(part, run / "survival" / "part-copy.parquet")


def _rewrite(run: Path, change=lambda t: t, **write) -> None:
    part = next((run / "survival").glob("*.parquet"))
    table = pq.read_table(part)
    pq.write_table(change(table), part, **{"compression": "zstd", **write})


def _swap_and_edit_summary(run: Path) -> None:
    """Flipped winners, and the part's sha256 in the summary edited to match, as by hand."""
    part = next((run / "survival").glob("*.parquet"))
    _rewrite(run, _flipped_winners)
    summary = json.loads((run / "run_summary.json").read_text())
    for p in summary["survival_table"]["parts"]:
        if p["name"] == part.name:
            p["sha256"] = hashlib.sha256(part.read_bytes()).hexdigest()
    (run / "run_summary.json").write_text(json.dumps(summary))


def _noted(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata({**table.schema.metadata, b"note": b"edited"})


def _removed_rows(table: pa.Table) -> pa.Table:
    return table.slice(0, table.num_rows - 3)


def _flipped_winners(table: pa.Table) -> pa.Table:
    flip = {"a": "b", "b": "a"}
    winners = [flip.get(w, w) for w in table.column("point_winner").to_pylist()]
    i = table.schema.get_field_index("point_winner")
    return table.set_column(i, table.schema.field(i), pa.array(winners, pa.string()))


def _retyped_column(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("seed")
    values = pa.array([str(v) for v in table.column("seed").to_pylist()])
    return table.set_column(i, pa.field("seed", pa.string()), values)


MODIFICATIONS = {
    "copied_part": (_copied_part, "part-copy.parquet (24 rows) is not a part the run wrote"),
    "removed_rows": (lambda r: _rewrite(r, _removed_rows), "has 21 rows, the run wrote 24"),
    "flipped_winners": (lambda r: _rewrite(r, _flipped_winners), "row values differ"),
    "retyped_column": (lambda r: _rewrite(r, _retyped_column), "column seed is string"),
    "swapped_winners_and_edited_summary": (_swap_and_edit_summary, "the summary was edited"),
    "metadata_only": (lambda r: _rewrite(r, _noted), "its Parquet metadata only"),
}


@pytest.mark.parametrize("case", list(MODIFICATIONS))
def test_modified_tables_are_refused_by_stats_and_report(clean, tmp_path, capsys, case):
    modify, expected = MODIFICATIONS[case]
    run = copy_run(clean, tmp_path)
    modify(run)
    before = tree_digest(tmp_path)
    assert main(["stats", str(run), "--out", str(tmp_path / "stats"), *STATS]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "--trust-modified" in err and len(err.splitlines()) == 1, err
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out), "--no-compute", "--gallery", "0"]) == 2
    assert expected in capsys.readouterr().err
    assert tree_digest(tmp_path) == before


def test_trust_modified_proceeds_and_the_outputs_record_it(clean, tmp_path, capsys):
    run = copy_run(clean, tmp_path)
    _copied_part(run)
    stats = tmp_path / "stats"
    assert main(["stats", str(run), "--out", str(stats), "--trust-modified", *STATS]) == 0
    (part,) = (stats / "estimates").glob("*.parquet")
    recorded = json.loads(pq.read_schema(part).metadata[UNVERIFIED_KEY.encode()])
    assert "not a part the run wrote" in recorded[str(run)][0]
    assert (
        "not a part the run wrote"
        in json.loads((stats / "_SUCCESS").read_text())["unverified_inputs"][str(run)][0]
    )
    assert "--trust-modified" in (stats / "report.html").read_text()
    est = StatsDir(str(stats)).estimates().to_pandas()
    clean_est = StatsDir(str(clean[0] / "stats")).estimates().to_pandas()
    assert (est["n"].to_numpy() == 2 * clean_est["n"].to_numpy()).all()  # the copy counts twice
    out = tmp_path / "report.html"
    args = ["report", str(run), "--stats", str(stats), "--out", str(out), "--gallery", "0"]
    assert main([*args, "--trust-modified", "--quiet"]) == 0
    assert "modified after the run (used with --trust-modified)" in out.read_text()


def test_unmodified_table_passes_and_matches(clean):
    base, summary = clean
    table = read_table(str(base / "run" / "survival"))
    assert table_hash(table) == summary["survival_table_sha256"]
    parts = summary["survival_table"]["parts"]
    assert [p["name"] for p in parts] == sorted(
        p.name for p in (base / "run" / "survival").glob("*.parquet")
    )
    assert summary["survival_table"]["rows"] == table.num_rows == 24


def test_unknown_criterion_is_one_line_and_writes_nothing(clean, tmp_path, capsys):
    base, _ = clean
    before = tree_digest(tmp_path)
    rc = main(["stats", str(base / "run"), "--out", str(tmp_path / "s"), "--criterion", "nosuch"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "no criterion nosuch" in err and "point" in err and "crop_0.56" in err
    assert tree_digest(tmp_path) == before
