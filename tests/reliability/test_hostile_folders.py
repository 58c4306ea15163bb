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
from tests.reliability.test_outputs import STATS, _flipped_winners, copy_run
from tests.reliability.test_outputs import clean as clean_run  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow


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
