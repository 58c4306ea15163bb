"""Composite ids cannot collide, whatever the group labels hold (issue 13, item 3); the run's
config.toml reads back whatever its name holds (item 7)."""

from __future__ import annotations

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from cropaudit import config as config_mod
from cropaudit.importers import write_manifest
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.rundir import read_table
from cropaudit.transforms.design import DesignCell, composite_id
from tests.reliability.conftest import face_rows, tiny_config
from tests.reliability.snapshot import folder_digest

#: Labels full of the old id separators (``:``, ``~``, ``@``) and of Unicode.
labels = st.text(alphabet=st.sampled_from(list(":~@ -_aé字😀\u200b")), max_size=6)


@settings(max_examples=500, deadline=None)
@given(labels, labels, labels, labels, st.integers(0, 3), st.integers(0, 3))
def test_different_cells_never_share_an_id(a1, b1, a2, b2, i1, i2):
    first = composite_id(DesignCell("pairs", a1, b1, 4), i1, "a_first")
    second = composite_id(DesignCell("pairs", a2, b2, 4), i2, "a_first")
    assert (first == second) == ((a1, b1, i1) == (a2, b2, i2))


def test_old_separators_in_labels_no_longer_collide():
    # "pairs:x~y~z" was the old id of both cells
    assert composite_id(DesignCell("pairs", "x~y", "z", 1), 0, "a_first") != composite_id(
        DesignCell("pairs", "x", "y~z", 1), 0, "a_first"
    )


WEIRD_NAME = 'audit ✓ 😀 \x01\x7f "quoted" back\\slash\ttab'


def test_a_run_with_colliding_old_ids_finishes_whole_and_reads_back(face_set, tmp_path):
    """Labels x, x~y, y~z, z: the pairs (x, y~z) and (x~y, z) had the same old id, so the run
    deleted their rows as duplicates and died; now every planned composite is in the table, and
    its config.toml (a name with emoji and control characters) loads back to the same config."""
    rows = face_rows(face_set)
    names = ["x", "x~y", "y~z", "z"]
    for i, row in enumerate(rows):
        row["tone"] = names[i % 4]
    manifest = tmp_path / "in" / "manifest.csv"
    manifest.parent.mkdir()
    write_manifest(rows, str(manifest))
    config = tiny_config(manifest).replace(name=WEIRD_NAME, groups={"attributes": ["tone"]})
    before = folder_digest(tmp_path)
    runs = [tmp_path / "run1", tmp_path / "run2"]
    summaries = [run_audit(config, str(out), quiet=True) for out in runs]
    assert folder_digest(tmp_path, skip=tuple(runs)) == before  # nothing else touched
    summary = summaries[0]
    assert summary["composites_expected"] == 6 * 2 * 2  # 6 pairs, 2 samples, both orders
    assert summary["survival_rows"] == 24 and summary["duplicate_rows_removed"] == 0
    assert summary["all_composites_accounted"] and not summary["dead_letters_by_stage_reason"]
    table = read_table(str(runs[0] / "survival")).to_pandas()
    assert table.composite_id.is_unique
    assert {(a, b) for a, b in zip(table.group_a, table.group_b)} == {
        (a, b) for i, a in enumerate(names) for b in names[i + 1 :]
    }
    # reruns are identical, and the written config reads back as the config that ran
    assert summaries[1]["survival_table_sha256"] == summary["survival_table_sha256"]
    assert config_mod.load(str(runs[0] / "config.toml")) == config
    part = sorted((runs[0] / "survival").glob("*.parquet"))[0]
    assert config_mod.loads(pq.read_metadata(part).metadata[b"cropaudit.config"].decode()) == config
