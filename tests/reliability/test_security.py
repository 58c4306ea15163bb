"""Security: no shell with manifest data, output paths never derived from manifest contents,
model files parsed with bounds checks."""

from __future__ import annotations

import ast
import struct
import tracemalloc
from pathlib import Path

import pytest

from cropaudit.importers import write_manifest
from cropaudit.model.fastgaze.vxm import VxmError, read_model
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.rundir import ownership
from tests.reliability.conftest import face_rows, tiny_config

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ["cropaudit", "pipelines", "transforms", "model", "schemas"]


def package_sources():
    for d in PACKAGE_DIRS:
        yield from sorted((REPO / d).rglob("*.py"))


def test_no_shell_or_dynamic_code_execution_in_the_package():
    offenders = []
    for path in package_sources():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in (
                    "eval",
                    "exec",
                    "os.system",
                    "os.popen",
                    "pickle.loads",
                    "pickle.load",
                    "yaml.load",
                ):
                    offenders.append(f"{path.name}:{node.lineno} {name}")
                for kw in node.keywords:
                    if kw.arg == "shell" and ast.unparse(kw.value) != "False":
                        offenders.append(f"{path.name}:{node.lineno} shell=")
    assert offenders == []


def test_output_paths_never_come_from_manifest_contents(face_set, tmp_path):
    rows = face_rows(face_set)
    for i, r in enumerate(rows):
        r["image_id"] = f"../../../escape-{i}"
        r["subject_id"] = f"..\\..\\{r['subject_id']}"
    manifest = tmp_path / "in" / "manifest.csv"
    manifest.parent.mkdir()
    write_manifest(rows, str(manifest))
    before = set(tmp_path.rglob("*"))
    out = tmp_path / "deep" / "out"
    run_audit(tiny_config(manifest), str(out), quiet=True)
    created = {p.relative_to(tmp_path) for p in set(tmp_path.rglob("*")) - before}
    allowed_top = {"_SUCCESS", "config.toml", "run_summary.json", "survival", "dead_letter"}
    allowed_top.add(ownership.MARKER)
    for p in created:
        parts = p.parts
        assert parts[:2] == ("deep", "out") or parts == ("deep",), p
        if len(parts) > 2:
            assert parts[2] in allowed_top, p
            assert "escape" not in str(p)


def test_model_files_are_parsed_with_bounds_checks(tmp_path):
    # a header claiming 2^31-1 entries, each claiming a 2 GB value, in a 24-byte file
    data = struct.pack("<II", 0x4D507401, 0x7FFFFFFF) + struct.pack("<I", 2) + b"a\0"
    data += struct.pack("<I", 0x7FFFFFFF) + b"xx"
    path = tmp_path / "evil.vxm"
    path.write_bytes(data)
    tracemalloc.start()
    with pytest.raises(VxmError):
        read_model(path.read_bytes())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20
