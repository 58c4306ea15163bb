"""Hostile folders, degenerate inputs and edited records (issue 27, items 1, 6 and 7).

Each case runs the CLI as a user would and checks, by checksums of every file (and the inode
of every path) before and after, that nothing outside the command's own files changed; where
the command succeeds, that its result equals a clean run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropaudit.cli import main
from cropaudit.rundir import StatsDir, ownership, table_hash
from cropaudit.rundir.locks import LOCK_NAME
from tests.reliability import test_outputs
from tests.reliability.conftest import tree_digest
from tests.reliability.test_outputs import (
    STATS,
    _flipped_winners,
    _rewrite,
    _swap_and_edit_summary,
    copy_run,
)
from tests.services import canonical_estimates

pytestmark = pytest.mark.slow
#: A clean run of the tiny config and its statistics (the fixture of :mod:`.test_outputs`).
clean = test_outputs.clean


def lstat_digest(root: Path) -> dict[str, str]:
    """Every path below ``root``, links not followed: a file's sha256 and inode, a link's
    target, a folder's inode. Equal digests: nothing was written, replaced or deleted."""
    out = {}
    for top, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(top, name)
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[key] = "link -> " + os.readlink(path)
            elif path.is_file():
                out[key] = f"{path.stat().st_ino} {hashlib.sha256(path.read_bytes()).hexdigest()}"
            else:
                out[key] = f"folder {path.stat().st_ino}"
    return out


def _outside(tmp_path: Path, clean_base: Path) -> Path:
    """A user's folder elsewhere: a text file, a run's parts (under the names Beam's sink
    deletes) and estimates."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "victim.txt").write_text("keep me")
    for part in (clean_base / "run" / "survival").glob("*.parquet"):
        shutil.copy(part, out / part.name)
        shutil.copy(part, out / "part-00042-of-00001.parquet")
    shutil.copytree(clean_base / "stats" / "estimates", out / "estimates")
    shutil.copytree(clean_base / "stats" / "plots", out / "plots")
    return out


def _link_table(folder: str, outside: Path, run: Path) -> None:
    shutil.rmtree(run / folder)
    (run / folder).symlink_to(outside if folder != "estimates" else outside / "estimates")


def _link_part(outside: Path, run: Path) -> None:
    part = next((run / "survival").glob("*.parquet"))
    part.unlink()
    part.symlink_to(outside / "part-00042-of-00001.parquet")


def _link_marker(outside: Path, run: Path) -> None:
    marker = run / ownership.MARKER
    shutil.move(marker, outside / "marker.json")
    marker.symlink_to(outside / "marker.json")


#: name -> (the output it is made in: run or stats, how the link is made, the path it names)
LINKS = {
    "lock": ("run", lambda o, r: (r / LOCK_NAME).symlink_to(o / "victim.txt"), LOCK_NAME),
    "survival_folder": ("run", lambda o, r: _link_table("survival", o, r), "survival"),
    "dead_letter_folder": ("run", lambda o, r: _link_table("dead_letter", o, r), "dead_letter"),
    "part_file": ("run", _link_part, "survival/part-"),
    "marker": ("run", _link_marker, ownership.MARKER),
    "beam_temp": ("run", lambda o, r: (r / "survival/beam-temp-x").symlink_to(o), "beam-temp-x"),
    "temp_file": (
        "run",
        lambda o, r: (r / "config.toml.tmp-0123").symlink_to(o / "victim.txt"),
        "config.toml.tmp-0123",
    ),
    "stats_lock": ("stats", lambda o, s: (s / LOCK_NAME).symlink_to(o / "victim.txt"), LOCK_NAME),
    "estimates_folder": ("stats", lambda o, s: _link_table("estimates", o, s), "estimates"),
    "plots_folder": ("stats", lambda o, s: _link_table("plots", o, s), "plots"),
}


@pytest.mark.parametrize("case", sorted(LINKS))
def test_a_link_where_a_command_writes_is_refused_before_anything_is_written(
    clean, tmp_path, capsys, case
):
    base, _ = clean
    kind, make, named = LINKS[case]
    outside = _outside(tmp_path, base)
    target = Path(shutil.copytree(base / kind, tmp_path / kind))
    make(outside, target)
    before = lstat_digest(tmp_path)
    if kind == "run":
        args = ["run", str(base / "cfg.toml"), "--out", str(target), "--overwrite", "--quiet"]
    else:
        args = ["stats", str(base / "run"), "--out", str(target), "--overwrite", *STATS]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "symbolic link" in err and named in err, err
    assert lstat_digest(tmp_path) == before  # outside, and the folder itself, untouched


def test_a_hard_linked_lock_is_refused(clean, tmp_path, capsys):
    base, _ = clean
    outside = _outside(tmp_path, base)
    stats = tmp_path / "stats"
    stats.mkdir()
    os.link(outside / "victim.txt", stats / LOCK_NAME)
    before = lstat_digest(tmp_path)
    assert main(["stats", str(base / "run"), "--out", str(stats), *STATS]) == 2
    assert "hard link" in capsys.readouterr().err
    assert lstat_digest(tmp_path) == before
    assert (outside / "victim.txt").read_text() == "keep me"


def test_a_linked_run_folder_of_the_demo_is_refused(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "run").symlink_to(outside)
    before = lstat_digest(tmp_path)
    assert main(["demo", "--out", str(demo), "--overwrite", "--no-progress"]) == 2
    assert "run is a symbolic link" in capsys.readouterr().err
    assert lstat_digest(tmp_path) == before


def test_other_links_are_kept_and_the_rerun_equals_a_clean_run(clean, tmp_path, capsys):
    """A link the run does not write at (the user's own) is neither followed nor removed, and
    the refused case, once the link is replaced by a folder, gives the clean run's table."""
    base, summary = clean
    outside = _outside(tmp_path, base)
    run = copy_run(clean, tmp_path)
    (run / "my_notes").symlink_to(outside)
    (run / "survival" / "my.txt").symlink_to(outside / "victim.txt")
    before = lstat_digest(outside)
    args = ["run", str(base / "cfg.toml"), "--out", str(run), "--overwrite", "--quiet"]
    assert main(args) == 0
    assert lstat_digest(outside) == before
    assert (run / "my_notes").is_symlink() and (run / "survival" / "my.txt").is_symlink()
    published = json.loads((run / "run_summary.json").read_text())
    assert published["survival_table_sha256"] == summary["survival_table_sha256"]


def test_a_hand_written_marker_cannot_make_overwrite_delete_a_users_files(clean, tmp_path, capsys):
    base, summary = clean
    out = tmp_path / "X"
    out.mkdir()
    mine = {"notes.txt": "mine", "thesis.tex": "mine too", "survival/data.csv": "a,b"}
    for name, text in mine.items():
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text(text)
    marker = {"kind": "run", "finished": True, "files": [*mine, "../outside.txt", 3]}
    (out / ownership.MARKER).write_text(json.dumps(marker))
    (tmp_path / "outside.txt").write_text("keep")
    args = ["run", str(base / "cfg.toml"), "--out", str(out), "--overwrite", "--quiet"]
    assert main(args) == 0
    for name, text in mine.items():
        assert (out / name).read_text() == text
    assert (tmp_path / "outside.txt").read_text() == "keep"
    published = json.loads((out / "run_summary.json").read_text())
    assert published["survival_table_sha256"] == summary["survival_table_sha256"]


# -- degenerate inputs: one line, exit 2 (item 6) ----------------------------------------------


@pytest.fixture(scope="module")
def dead_run(face_set, tmp_path_factory):
    """A config whose every composite is dead-lettered (every image is garbage), and its run."""
    from tests.reliability.conftest import tiny_config

    base = tmp_path_factory.mktemp("dead")
    faces = Path(shutil.copytree(face_set.parent, base / "faces"))
    for image in (faces / "images").iterdir():
        image.write_bytes(b"not an image")
    (base / "cfg.toml").write_text(tiny_config(faces / face_set.name).to_toml())
    return base


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_run_of_no_rows_exits_2_in_one_line_and_is_complete_but_not_finished(
    dead_run, tmp_path, capsys
):
    out = tmp_path / "run"
    args = ["run", str(dead_run / "cfg.toml"), "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = one_line(capsys)
    assert "published no survival row: 24 of 24 composites dead-lettered" in err, err
    assert "render/image_not_an_image 24" in err and "no _SUCCESS" in err
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["status"] == "no_survival_rows" and summary["survival_rows"] == 0
    assert (out / "config.toml").is_file() and not (out / "_SUCCESS").exists()
    dead = pq.read_table(out / "dead_letter").to_pylist()
    assert len(dead) == 24 and {d["reason"] for d in dead} == {"image_not_an_image"}
    assert ownership.read_owner(str(out))["finished"]
    before = tree_digest(tmp_path)
    assert main(["stats", str(out), "--out", str(tmp_path / "stats"), *STATS]) == 2
    assert "published no survival row" in one_line(capsys)
    report = ["report", str(out), "--out", str(tmp_path / "r.html"), "--gallery", "0"]
    assert main(report) == 2
    assert "published no survival row" in one_line(capsys)
    assert tree_digest(tmp_path) == before  # neither wrote anything
    assert main([*args, "--overwrite"]) == 2  # a rerun: the same run, the same dead letters
    assert "24 of 24" in one_line(capsys)
    assert table_hash(pq.read_table(out / "dead_letter")) == table_hash(pa.Table.from_pylist(dead))


def test_an_older_run_of_no_rows_with_success_is_one_line(dead_run, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(dead_run / "cfg.toml"), "--out", str(out), "--quiet"]) == 2
    capsys.readouterr()
    summary = json.loads((out / "run_summary.json").read_text())
    del summary["status"]  # as cropaudit wrote it before: _SUCCESS and no rows
    (out / "run_summary.json").write_text(json.dumps(summary))
    (out / "_SUCCESS").write_text("")
    before = tree_digest(tmp_path)
    assert main(["stats", str(out), "--out", str(tmp_path / "stats"), *STATS]) == 2
    assert "published no survival row" in one_line(capsys)
    assert tree_digest(tmp_path) == before


def _plain(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir()
    cols = ["a_subject_id", "b_subject_id", "position", "outcome"]
    if name == "empty.parquet":
        pq.write_table(pa.table({c: pa.array([], pa.string()) for c in cols}), path)
    elif name == "list.parquet":
        n = 40
        rows = {
            "a_subject_id": [f"a{i % 5}" for i in range(n)],
            "b_subject_id": [f"b{i % 5}" for i in range(n)],
            "position": ["a_first", "b_first"] * (n // 2),
            "outcome": ["a", "b", "a", "tie"] * (n // 4),
            "group_a": [["x", "y"]] * n,
        }
        pq.write_table(pa.table(rows), path)
    elif name == "garbage.parquet":
        path.write_bytes(b"PAR1 not a Parquet file PAR1")
    else:
        path.write_text(",".join(cols) + "\n")  # a CSV with a header only
    return path


PLAIN = {
    "empty.parquet": "has no rows",
    "header_only.csv": "has no rows",
    "list.parquet": "column 'group_a' holds ndarray values",
    "garbage.parquet": "is not a readable Parquet table",
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_stats_on_an_empty_mistyped_or_unreadable_table_is_one_line(tmp_path, capsys, name):
    path = _plain(tmp_path, name)
    before = tree_digest(tmp_path)
    args = ["stats", str(path), "--out", str(tmp_path / "s"), "--replicates", "20"]
    assert main([*args, "--column", "group_a=group_a"] if "list" in name else args) == 2
    assert PLAIN[name] in one_line(capsys)
    assert tree_digest(tmp_path) == before


def test_a_garbage_part_in_a_run_is_one_line(clean, tmp_path, capsys):
    run = copy_run(clean, tmp_path)
    next((run / "survival").glob("*.parquet")).write_bytes(b"PAR1 garbage PAR1")
    before = tree_digest(tmp_path)
    assert main(["stats", str(run), "--out", str(tmp_path / "s"), *STATS]) == 2
    assert "is not a readable Parquet file" in one_line(capsys)
    assert tree_digest(tmp_path) == before


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
@pytest.mark.parametrize("command", ["run", "stats"])
def test_a_full_disk_is_one_line_naming_the_output_and_nothing_looks_finished(
    clean, tmp_path, command
):
    """The output folder is a 24 KiB tmpfs, mounted in a private user and mount namespace."""
    import subprocess
    import sys

    base, _ = clean
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / command
    args = (
        ["run", str(base / "cfg.toml"), "--out", str(out), "--quiet"]
        if command == "run"
        else ["stats", str(base / "run"), "--out", str(out), *STATS]
    )
    cli = " ".join([sys.executable, "-m", "cropaudit", *args])
    script = f"mount -t tmpfs -o size=24k tmpfs {disk} && {cli}; rc=$?; ls -AR {out}; exit $rc"
    before = tree_digest(base)
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "no space left" in err and str(out) in err, err
    assert "_SUCCESS" not in done.stdout and ownership.MARKER in done.stdout  # not finished
    assert tree_digest(base) == before and not any(disk.iterdir())


# -- verification that cannot be edited around (item 7) ----------------------------------------


def test_an_edited_part_record_without_row_hashes_fails_the_table_hash(clean, tmp_path, capsys):
    """The attack of the issue on a record as older versions wrote it (no seal): the part
    matches its edited record, the table's own hash does not."""
    run = copy_run(clean, tmp_path)
    _swap_and_edit_summary(run)
    summary = json.loads((run / "run_summary.json").read_text())
    del summary["survival_table"]["seal"]
    (run / "run_summary.json").write_text(json.dumps(summary))
    assert main(["stats", str(run), "--out", str(tmp_path / "s"), *STATS]) == 2
    assert "not to the survival_table_sha256 its summary records" in one_line(capsys)


IDENTICAL = {
    "pyarrow_default": {"compression": "snappy", "use_compliant_nested_type": True},
    "snappy_small_row_groups": {"compression": "snappy", "row_group_size": 5},
}


@pytest.mark.parametrize("case", [*sorted(IDENTICAL), "rows_reversed"])
def test_a_rewrite_with_the_same_rows_is_the_same_table(clean, tmp_path, capsys, case):
    base, _ = clean
    run = copy_run(clean, tmp_path)
    if case == "rows_reversed":
        _rewrite(run, lambda t: t.take(list(range(t.num_rows))[::-1]))
    else:
        _rewrite(run, **IDENTICAL[case])
    stats = tmp_path / "s"
    assert main(["stats", str(run), "--out", str(stats), *STATS]) == 0
    assert capsys.readouterr().err == ""
    est = canonical_estimates(StatsDir(str(stats)).estimates())
    assert est.equals(canonical_estimates(StatsDir(str(base / "stats")).estimates()))


def test_report_warns_when_its_statistics_came_from_another_table(clean, tmp_path, capsys):
    """Statistics made with --trust-modified from an edited table, shown after the table was
    restored: the page says so; the same run's clean statistics carry no such warning."""
    base, _ = clean
    run = copy_run(clean, tmp_path)
    part = next((run / "survival").glob("*.parquet"))
    original = part.read_bytes()
    _rewrite(run, _flipped_winners)
    edited = tmp_path / "edited_stats"
    assert main(["stats", str(run), "--out", str(edited), "--trust-modified", *STATS]) == 0
    part.write_bytes(original)  # restored
    page = tmp_path / "r.html"
    report = ["report", str(run), "--out", str(page), "--gallery", "0", "--quiet"]
    assert main([*report, "--stats", str(edited)]) == 0
    text = page.read_text()
    assert "were not computed from this survival table" in text
    assert "were made with --trust-modified" in text
    assert main([*report, "--stats", str(base / "stats")]) == 0
    text = page.read_text()
    assert "were not computed from this survival table" not in text
    assert "--trust-modified" not in text


def test_a_report_written_over_a_link_replaces_the_link_not_its_target(clean, tmp_path, capsys):
    """``report --out LINK``: a link to another report is replaced by the new page (the
    report it pointed to is left as it was); a link to any other file is refused."""
    base, _ = clean
    outside = _outside(tmp_path, base)
    (outside / "report.html").write_text(f"<html>{ownership.html_mark('report')}</html>")
    page = tmp_path / "r.html"
    page.symlink_to(outside / "report.html")
    other = tmp_path / "o.html"
    other.symlink_to(outside / "victim.txt")
    before = lstat_digest(outside)
    report = ["report", str(base / "run"), "--gallery", "0", "--no-compute", "--quiet"]
    assert main([*report, "--out", str(other)]) == 2
    assert "was not written by this cropaudit command" in one_line(capsys)
    assert main([*report, "--out", str(page)]) == 0
    assert not page.is_symlink() and "cropaudit report" in page.read_text()
    assert lstat_digest(outside) == before


def test_an_edited_table_hash_alone_breaks_the_seal(clean, tmp_path, capsys):
    run = copy_run(clean, tmp_path)
    summary = json.loads((run / "run_summary.json").read_text())
    summary["survival_table_sha256"] = "0" * 64
    (run / "run_summary.json").write_text(json.dumps(summary))
    before = tree_digest(tmp_path)
    assert main(["stats", str(run), "--out", str(tmp_path / "s"), *STATS]) == 2
    assert "the summary was edited" in one_line(capsys)
    assert tree_digest(tmp_path) == before


def test_the_one_line_ends_the_process_cleanly(tmp_path):
    """As a subprocess: the error about an empty table is the whole of stderr and the exit
    is 2 (Arrow's I/O pool, left starting by a pre-buffered read, used to abort the
    interpreter's exit with 'terminate called without an active exception')."""
    import subprocess
    import sys

    path = _plain(tmp_path, "empty.parquet")
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-m", "cropaudit", "stats", str(path), "--out", str(tmp_path / "s")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2 and done.stderr.strip().endswith("nothing to analyse"), done
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
