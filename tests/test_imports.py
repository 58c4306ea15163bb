"""Imports flow one way, and no two modules share a name: a static scan of the source (every
``import`` statement, at the top of a module or inside a function), so a violation is found
whether or not a test happens to run the code that imports.

Layers, bottom to top (a module may import its own layer and the layers below it):

    schemas -> utilities -> stats -> model -> config -> transforms -> report -> pipelines
    -> commands -> cli

``cropaudit.stats`` is pure: besides the standard library (not ``html``) it imports only numpy,
pandas, pyarrow, scipy and statsmodels, and of cropaudit only ``schemas``, ``errors`` and itself.
The report reads tables: it never imports a pipeline or a command.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Source folder -> the package it installs as (``[tool.setuptools] package-dir``).
PACKAGE_DIRS = {
    "cropaudit": "cropaudit",
    "pipelines": "cropaudit.pipelines",
    "transforms": "cropaudit.transforms",
    "model": "cropaudit.model",
    "schemas": "cropaudit.schemas",
    "experiments": "cropaudit.experiments",
}
LAYERS = (
    "schemas",
    "utilities",
    "stats",
    "model",
    "config",
    "transforms",
    "rundir",
    "report",
    "pipelines",
    "commands",
    "cli",
)
#: Module (or package) -> layer; a module takes the entry of its longest matching prefix.
LAYER_OF = {
    "cropaudit.schemas": "schemas",
    "cropaudit": "utilities",  # errors, fileio, provenance, progress ...
    "cropaudit.engine": "utilities",  # the local Flink job server the runners start
    "cropaudit.experiments": "utilities",  # shipped configs (data)
    "cropaudit.stats": "stats",
    "cropaudit.model": "model",
    "cropaudit.config": "config",  # typed experiment configs: validate model options
    "cropaudit.transforms": "transforms",
    "cropaudit.facedetect": "transforms",  # a face detector built on the croppers
    "cropaudit.importers": "transforms",  # public datasets -> manifests
    "cropaudit.rundir": "rundir",  # run and statistics folders: RunDir, StatsDir
    # what every layer may use to write safely: ownership, locks, table checks, Parquet folders
    "cropaudit.rundir.ownership": "utilities",
    "cropaudit.rundir.locks": "utilities",
    "cropaudit.rundir.tablecheck": "utilities",
    "cropaudit.rundir.parquet_folder": "utilities",
    "cropaudit.report": "report",
    "cropaudit.explore": "report",  # the explorer reads runs as the report does
    "cropaudit.pipelines": "pipelines",
    "cropaudit.commands": "commands",
    "cropaudit.cli": "cli",
    "cropaudit.__main__": "cli",
}
#: What pure statistics may import.
STATS_CROPAUDIT = ("cropaudit.stats", "cropaudit.schemas", "cropaudit.errors")
STATS_THIRD_PARTY = {"numpy", "pandas", "pyarrow", "scipy", "statsmodels"}
#: Standard-library modules of presentation, which statistics leave to the report.
STATS_NOT_STDLIB = {"html", "tkinter", "turtle"}

#: Violations other changes of issue 15 remove: (importing module, imported module) -> why it is
#: still here. Empty it as they land; an entry that no longer occurs fails the test, and so does
#: any violation not listed.
PENDING = {
    # run-directory code leaves pipelines/ for the run-directory library (item 3, `rundir`)
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    names = [PACKAGE_DIRS[parts[0]], *parts[1:]]
    return ".".join(names[:-1] if names[-1] == "__init__" else names)


def project_modules() -> dict[str, Path]:
    modules = {}
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports (absolute names; ``from pkg import mod`` names ``pkg.mod``
    when that is a module of the project: package ``__init__`` modules import nothing eagerly
    from a higher layer, see ``cropaudit/rundir/__init__.py``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            submodules = {f"{base}.{a.name}" for a in node.names} & set(modules)
            # ``from pkg import mod`` imports mod (pkg's __init__ is checked as a module itself);
            # ``from mod import name`` imports mod
            found.update(submodules or {base})
    return found


def layer(name: str) -> str:
    prefix = max(
        (p for p in LAYER_OF if name == p or name.startswith(p + ".")), key=len, default=None
    )
    assert prefix is not None, f"{name} has no layer: add it to LAYER_OF"
    return LAYER_OF[prefix]


def owner(imported: str, modules: dict[str, Path]) -> str | None:
    """The project module an import names (``cropaudit.x.y`` for ``cropaudit.x.y.attr``)."""
    while imported and imported not in modules:
        imported = imported.rpartition(".")[0]
    return imported or None


def violations(modules: dict[str, Path] | None = None) -> set[tuple[str, str, str]]:
    """(importing module, imported module, rule broken) of ``modules`` (name -> source file;
    default: the whole project)."""
    modules = project_modules() if modules is None else modules
    found = set()
    for name, path in modules.items():
        rank = LAYERS.index(layer(name))
        pure = layer(name) == "stats"
        for imported in imports(path, name, modules):
            top = imported.partition(".")[0]
            if top != "cropaudit":
                stdlib = top in sys.stdlib_module_names - STATS_NOT_STDLIB or top == "__future__"
                if pure and not stdlib and top not in STATS_THIRD_PARTY:
                    found.add((name, imported, "pure statistics import no such library"))
                continue
            target = owner(imported, modules)
            if target is None or target == name:
                continue
            if pure and not any(target == p or target.startswith(p + ".") for p in STATS_CROPAUDIT):
                found.add((name, target, "pure statistics import only schemas and errors"))
            elif LAYERS.index(layer(target)) > rank:
                found.add((name, target, f"{layer(name)} imports {layer(target)}, a higher layer"))
    return found


def test_imports_flow_one_way():
    found = violations()
    new = sorted(v for v in found if v[:2] not in PENDING)
    assert not new, "imports against the layer order (see this module's docstring):\n" + "\n".join(
        f"  {a} -> {b}: {why}" for a, b, why in new
    )
    gone = sorted(set(PENDING) - {v[:2] for v in found})
    assert not gone, "no longer violated: remove from PENDING:\n" + "\n".join(
        f"  {a} -> {b}" for a, b in gone
    )


def test_the_scan_finds_function_level_relative_and_library_imports(tmp_path):
    """The rule's own check on a small tree: an import inside a function, a relative one and a
    plotting library in pure statistics, and a report that imports a command, are all found;
    a report importing statistics and transforms is not."""
    sources = {
        "cropaudit.stats.probe": "def f():\n    from cropaudit.pipelines.stats_pipeline import x\n"
        "from ..report import page\nimport matplotlib.pyplot\nfrom cropaudit import errors\n"
        "import html\nimport math\n",
        "cropaudit.report.page": "from cropaudit.commands import report_command\n"
        "from cropaudit.stats import probe\nimport cropaudit.transforms.crop\n",
        "cropaudit.pipelines.stats_pipeline": "",
        "cropaudit.commands.report_command": "",
        "cropaudit.transforms.crop": "from cropaudit.report import page\n",
        "cropaudit.errors": "",
    }
    modules = {}
    for name, text in sources.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        modules[name] = path
    found = {(a, b) for a, b, _ in violations(modules)}
    assert found == {
        ("cropaudit.stats.probe", "cropaudit.pipelines.stats_pipeline"),
        ("cropaudit.stats.probe", "cropaudit.report.page"),
        ("cropaudit.stats.probe", "matplotlib.pyplot"),
        ("cropaudit.stats.probe", "html"),
        ("cropaudit.report.page", "cropaudit.commands.report_command"),
        ("cropaudit.transforms.crop", "cropaudit.report.page"),
    }


def test_no_two_modules_share_a_name():
    skip = {".git", ".venv", "build", "dist", "node_modules", "__pycache__", "shared"}
    paths = [
        p
        for p in ROOT.rglob("*.py")
        if not (set(p.relative_to(ROOT).parts[:-1]) & skip)
        and not any(part.startswith(".") or part.endswith(".egg-info") for part in p.parts)
    ]
    # pytest needs a conftest.py per folder; packages need __init__.py
    names = Counter(p.name for p in paths if p.name not in {"__init__.py", "conftest.py"})
    repeated = {n: sorted(str(p.relative_to(ROOT)) for p in paths if p.name == n)
                for n, k in names.items() if k > 1}  # fmt: skip
    assert not repeated, f"module names used twice: {repeated}"
    assert len(names) > 100  # the scan saw the project


def test_readme_layout_names_what_exists():
    """Every folder and module the README's Layout section names exists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, "README.md has a '## Layout' section"
    section = match.group(1)
    # a name in a bullet is relative to the folder the bullet starts with
    paths = set()
    for line in re.split(r"\n- ", section):
        names = re.findall(r"`([\w/.]+)`", line)
        folders = [n for n in names if n.endswith("/")]
        for n in names:
            if n.endswith(".py") and "/" not in n and folders:
                paths.add(folders[0] + n)
            elif n.endswith(("/", ".py", ".toml")):
                paths.add(n)
    assert len(paths) >= 15, paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"README Layout names paths that do not exist: {missing}"
    for folder in ("pipelines/", "transforms/", "model/", "experiments/", "schemas/", "tests/"):
        assert folder in paths, f"the Layout section says what lives in {folder}"


@pytest.mark.parametrize("name", ["cropaudit.report", "cropaudit.stats"])
def test_layers_cover_the_packages(name):
    assert layer(name) in LAYERS
