"""``cropaudit report``: a small real run -> statistics -> one self-contained HTML page, checked
by parsing it and by rendering it in headless Chromium (skipped when Chromium is absent; install
it with ``apt-get install -y chromium``)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from cropaudit.cli import main
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.pipelines.demo_pipeline import embedded_config
from cropaudit.pipelines.stats_pipeline import run_stats
from cropaudit.report.page import SECTIONS as page_sections
from cropaudit.synthetic import write_face_set

GALLERY = 5
SECTIONS = (
    "findings",
    "design",
    "counts",
    "dead-letters",
    "survival-ratios",
    "croppers",
    "position-bias",
    "sensitivity",
    "planning",
    "face-or-body",
    "face-detector",
    "gallery",
)
CRITERIA = ("point", "crop_0.56", "crop_1.00", "crop_1.14", "crop_2.00")


class PageParser(HTMLParser):
    """Collects ids, images (with their attributes) and every src/href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a)
        for key in ("src", "href", "srcset", "poster", "data"):
            if key in a:
                self.links.append(a[key])


def parse(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run (10 composites, one manifest dead letter) and its statistics."""
    base = tmp_path_factory.mktemp("report")
    manifest = write_face_set(base / "faces", seed=3, subjects_per_group=2)
    with open(manifest, "a") as f:
        f.write("broken-0,images/broken.jpg,broken,,short\n")  # blank tone: dead letter
    config = embedded_config().replace(
        name="report-test",
        manifest={"path": str(manifest)},
        groups={"attributes": ["tone"]},
        design={"composites_per_pair": 3, "controls": ["same_group"], "controls_per_group": 1},
    )
    summary = run_audit(config, str(base / "run"), quiet=True)
    run_stats([str(base / "run")], str(base / "stats"), replicates=100, render=False)
    return base, summary


@pytest.fixture(scope="module")
def report(run):
    base, _ = run
    out = base / "report.html"
    rc = main(
        [
            "report",
            str(base / "run"),
            "--stats",
            str(base / "stats"),
            "--out",
            str(out),
            "--gallery",
            str(GALLERY),
            "--quiet",
        ]
    )
    assert rc == 0
    return out


def test_run_summary_records_beam_counters(run):
    _, summary = run
    counters = summary["beam_counters"]
    assert counters["composites_rendered"] == counters["composites_predicted"] == 10
    assert counters["composites_dead_lettered"] == 0


def criteria_shown(run) -> list[tuple[str, ...]]:
    """The run's criteria as the pages show them: those with identical winners together."""
    from cropaudit.report.plotkit import criteria_groups
    from cropaudit.rundir import StatsDir

    base, _ = run
    groups = criteria_groups(StatsDir(str(base / "stats")).estimates().to_pandas())
    assert sorted(c for g in groups for c in g) == sorted(CRITERIA)
    return groups


def test_page_has_sections_plots_and_gallery(report, run):
    text = report.read_text(encoding="utf-8")
    page = parse(text)
    assert set(SECTIONS) <= page.ids
    # the findings come first, provenance last and collapsed
    assert text.index("<section id='findings'>") < text.index("<section id='survival-ratios'>")
    design = text.split("<section id='design'>")[1]
    assert design.startswith("<h2>Design and provenance</h2><details>")
    assert text.index("<section id='design'>") > text.index("<section id='gallery'>")
    plots = [i for i in page.images if i.get("class") == "plot"]
    for group in criteria_shown(run):  # one plot per group, its heading naming the others
        assert [i.get("data-criterion") for i in plots].count(group[0]) == 1, group
        assert not any(i.get("data-criterion") in group[1:] for i in plots)
        if len(group) > 1:
            assert f"identical results for {', '.join(group[1:])}" in text
    assert any(i.get("data-criterion") == "position" for i in plots)
    gallery = [i for i in page.images if i.get("class") == "gallery-image"]
    assert len(gallery) == GALLERY
    for image in plots + gallery:
        head, _, payload = image["src"].partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(payload)[:8] == b"\x89PNG\r\n\x1a\n"
    # self-contained: only data: URIs and in-page anchors, no script, stylesheet link or font
    assert all(link.startswith(("data:", "#")) for link in page.links), page.links
    assert not re.search(r"https?://|url\(", text)
    assert not {"script", "link", "iframe"} & page.tags
    # the content of the other sections
    assert "empty_field" in text  # the manifest dead letter, by reason
    assert "baseline-centre-surround" in text and "config hash" in text
    assert "One variant only" in text
    # Planning: 10 composites are too few to plan from, and the page says why in one sentence.
    planning = text.split("<section id='planning'>")[1].split("</section>")[0]
    assert planning.count("<p") == 1 and "<table>" not in planning
    assert "Nothing to plan from this run" in planning
    assert "went one way" in planning or "too small to plan from" in planning
    assert text.count("re-scored: matches the recorded row") == GALLERY
    assert len(text) < 3_000_000


def test_gallery_is_ordered_by_margin(report, run):
    base, _ = run
    ids = [
        i["data-composite-id"] for i in parse(report.read_text()).images if "data-composite-id" in i
    ]
    df = pd.read_parquet(base / "run" / "survival")
    pairs = df[df.design == "pairs"].assign(m=lambda d: d.margin.abs())
    expected = list(pairs.sort_values(["m", "composite_id"]).composite_id)
    n_pairs = min(GALLERY, len(expected))
    assert ids[:n_pairs] == expected[:n_pairs]
    assert len(ids) == len(set(ids)) == GALLERY


def test_finds_stats_beside_run_or_computes_them(run, tmp_path):
    base, _ = run
    beside = tmp_path / "beside" / "run"  # a copy: the module's run stays as it was
    shutil.copytree(base / "run", beside)
    shutil.copytree(base / "stats", beside / "stats")
    out = tmp_path / "found.html"
    assert main(["report", str(beside), "--out", str(out), "--gallery", "0", "--quiet"]) == 0
    assert "found beside the run" in out.read_text()

    lonely = tmp_path / "elsewhere" / "run"
    shutil.copytree(base / "run", lonely)
    out = tmp_path / "computed.html"
    args = ["report", str(lonely), "--out", str(out), "--gallery", "0", "--quiet"]
    assert main([*args, "--no-compute"]) == 0
    assert "No statistics output for this run" in out.read_text()
    assert main([*args, "--replicates", "20"]) == 0
    text = out.read_text()
    assert "computed for this report (20 bootstrap replicates" in text
    plots = sum(1 for i in parse(text).images if i.get("class") == "plot")
    assert plots == len(criteria_shown(run)) + 1  # + position bias


def test_computed_estimates_equal_the_stage(run):
    """The report's in-process estimates (no Beam) are the rows `cropaudit stats` wrote."""
    import numpy as np
    import pyarrow as pa

    from cropaudit.report.inputs import load_run
    from cropaudit.rundir import StatsDir
    from cropaudit.schemas.estimates import ESTIMATES_SCHEMA, KEY_FIELDS
    from cropaudit.stats.run_estimates import run_estimates

    base, _ = run
    stage = StatsDir(str(base / "stats")).estimates().to_pandas()
    mine = run_estimates(load_run(str(base / "run")).survival_table, replicates=100)
    mine = pa.Table.from_pandas(mine, preserve_index=False).select(ESTIMATES_SCHEMA.names)
    mine = mine.cast(ESTIMATES_SCHEMA).to_pandas()
    assert len(stage) == len(mine) > 0
    stage, mine = (d.sort_values(list(KEY_FIELDS)).reset_index(drop=True) for d in (stage, mine))
    assert set(stage["criterion"]) == set(CRITERIA)
    for column in ESTIMATES_SCHEMA.names:
        a, b = stage[column], mine[column]
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=column)
        else:
            assert [str(v) for v in a] == [str(v) for v in b], column


def test_three_groups_get_group_vs_rest_as_the_stage_keys_them():
    """With three groups every mixed composite also counts for each face's group against the
    rest, from that face's side: hand-counted wins."""
    import pyarrow as pa

    from cropaudit.stats.run_estimates import run_estimates

    rows = [  # (group_a, group_b, a subject, b subject, position, point winner)
        ("x", "y", "x1", "y1", "a_first", "a"),
        ("x", "y", "x2", "y2", "b_first", "b"),
        ("y", "z", "y1", "z1", "a_first", "a"),
        ("x", "z", "x1", "z2", "a_first", "tie"),
        ("z", "z", "z1", "z2", "a_first", "a"),
    ]
    keys = {"model_name": "m", "model_hash": "h", "layout": "v", "layout_params": "{}",
            "preprocessing": "p", "design": "pairs", "config_hash": "c", "seed": 1,
            "versions": "v1"}  # fmt: skip
    table = pa.Table.from_pylist(
        [
            {
                **keys,
                "group_a": ga,
                "group_b": gb,
                "a_subject_id": sa,
                "b_subject_id": sb,
                "position": pos,
                "point_winner": w,
                "crops": [],
            }
            for ga, gb, sa, sb, pos, w in rows
        ]  # fmt: skip
    )
    est = run_estimates(table, replicates=20, model_max=0)
    rest = est[est["comparison"] == "group_vs_rest"].set_index("group_a")
    assert set(rest["group_b"]) == {"rest"} and sorted(rest.index) == ["x", "y", "z"]
    # x: won row 1, lost row 2 (b won), tied row 4; y: lost row 1, won rows 2 and 3
    assert rest.loc["x", ["wins_a", "wins_b", "ties"]].tolist() == [1, 1, 1]
    assert rest.loc["y", ["wins_a", "wins_b", "ties"]].tolist() == [2, 1, 0]
    assert rest.loc["z", ["wins_a", "wins_b", "ties"]].tolist() == [0, 1, 1]  # z-z row excluded
    assert len(est[est["comparison"] == "pair"]) == 4
    assert est["variant"].unique().tolist() == ["base"]  # a table without the column
    assert est["config_hashes"].map(list).tolist() == [["c"]] * len(est)


def test_both_pages_come_from_one_kit(run, report, tmp_path):
    """The statistics page and the run report: the same stylesheet and skeleton, navigation
    from each page's one section list, an embedded forest plot per group of criteria with
    identical winners on both, findings first."""
    from cropaudit.report import stats_page
    from cropaudit.report.pagekit import CSS
    from cropaudit.rundir import StatsDir

    base, _ = run
    path = stats_page.write_outputs(StatsDir(str(base / "stats")).estimates(), str(tmp_path))
    pages = {"stats": Path(path).read_text(), "report": report.read_text()}
    sections = {"stats": stats_page.SECTIONS, "report": page_sections}
    for name, text in pages.items():
        parsed = parse(text)
        ids = [s.id for s in sections[name]]
        assert f"<style>{CSS}</style>" in text, name
        assert f'content="cropaudit {name}"' in text  # each page's ownership mark
        assert set(ids) <= parsed.ids and len(set(ids)) == len(ids)
        assert [link for link in parsed.links if link.startswith("#")] == [f"#{i}" for i in ids]
        assert text.count("<section id=") == len(ids)
        plotted = {i.get("data-criterion") for i in parsed.images if i.get("class") == "plot"}
        assert {g[0] for g in criteria_shown(run)} <= plotted, name
        assert ids[0] == "findings"
        assert not re.findall(r"<th>[^<]*_[^<]*</th>", text), name  # human column headers
    stats_text = pages["stats"]
    assert "Tests against parity" in stats_text and "bootstrap p (Holm)" in stats_text
    for criterion in CRITERIA:
        assert (tmp_path / "plots" / f"{criterion}.svg").read_bytes().lstrip().startswith(b"<?xml")


def test_one_table_helper_formats_every_cell_kind():
    """The kit's table: numbers (numpy's too) right-aligned and short, missing values as a
    dash, text escaped; a repeated section id is refused."""
    import numpy as np

    from cropaudit.report.pagekit import Section, frame_table, render_sections

    df = pd.DataFrame(
        {
            "name": ["<a>", None],
            "n": np.array([3, 40000], dtype=np.int64),
            "ratio": [0.123456, float("nan")],
            "flag": [True, None],
        }
    )
    html = frame_table(df, ["name", "n", "ratio", "flag"])
    assert "<th>name</th><th>n</th><th>ratio</th><th>flag</th>" in html
    assert "<td>&lt;a&gt;</td><td class=num>3</td><td class=num>0.1235</td><td>True</td>" in html
    assert "<td class=num>40000</td><td class=num>–</td><td>–</td></tr>" in html  # ints in full
    assert html.count("–") == 3 and "nan" not in html.lower() and "None" not in html
    twice = (Section("a", "A", str), Section("a", "B", str))
    with pytest.raises(ValueError, match="repeat"):
        render_sections(twice, 1)


def test_refuses_unfinished_run(run, tmp_path, capsys):
    base, _ = run
    unfinished = tmp_path / "unfinished"
    shutil.copytree(base / "run", unfinished)
    (unfinished / "_SUCCESS").unlink()
    assert main(["report", str(unfinished), "--out", str(tmp_path / "r.html")]) == 2
    assert "_SUCCESS" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def with_variants(inputs, names):
    """``inputs`` whose survival table repeats every row once per variant name."""
    import pyarrow as pa

    table, parts = inputs.survival_table, []
    for name in names:
        column = pa.array([name] * table.num_rows, pa.string())
        if "variant" in table.column_names:
            parts.append(table.set_column(table.column_names.index("variant"), "variant", column))
        else:
            parts.append(table.append_column("variant", column))
    inputs.survival_table = pa.concat_tables(parts)
    inputs.survival = inputs.survival_table.to_pandas()
    return inputs


def test_gallery_and_counts_with_sweep_variants(run):
    """Several variants: the gallery draws only base rows (no repeats); counts per variant."""
    from cropaudit.report import page
    from cropaudit.report.gallery import pick_rows
    from cropaudit.report.inputs import load_run

    base, _ = run
    inputs = with_variants(load_run(str(base / "run")), ["base", "pad=16", "jpeg=75"])
    rows = pick_rows(inputs.survival, 6)
    assert set(rows["variant"]) == {"base"} and rows["composite_id"].is_unique
    html = page.counts_section(inputs)
    assert "<th>variant</th>" in html and html.count("<td>pad=16</td>") == 3


def test_sensitivity_section_with_real_module(run):
    from cropaudit.report import page
    from cropaudit.report.inputs import load_run
    from cropaudit.stats import sensitivity

    base, _ = run
    inputs = with_variants(load_run(str(base / "run")), ["base", "pad=16"])
    assert len(sensitivity.variant_estimates(inputs.survival_table, criterion="point")) == 2
    html = page.sensitivity_section(inputs)
    assert "failed" not in html
    assert [i.get("data-criterion") for i in parse(html).images] == ["variant"]
    assert "One estimate per variant" in html and "Flip rates" in html and "pad=16" in html


# -- headless Chromium -------------------------------------------------------------------------

CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var all = Array.prototype.slice.call(document.images);
  function decoded(list) {
    return list.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  }
  var out = document.createElement('pre');
  out.id = 'decode-check';
  out.textContent = JSON.stringify({
    images: all.length,
    decoded: decoded(all),
    plots: decoded(all.filter(function (i) { return i.classList.contains('plot'); })),
    gallery: decoded(all.filter(function (i) { return i.classList.contains('gallery-image'); })),
    sections: document.querySelectorAll('section').length
  });
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    pytest.skip("headless Chromium not installed (Debian: apt-get install -y chromium)")


def chromium_cmd(binary: str, profile: Path) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
    ]


def test_renders_in_headless_chromium(report, run, tmp_path):
    binary = chromium()
    page = tmp_path / "checked.html"
    page.write_text(report.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    base = chromium_cmd(binary, tmp_path / "profile")
    done = subprocess.run(
        [*base, "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    match = re.search(r'<pre id="decode-check">(.*?)</pre>', done.stdout)
    assert match, (done.returncode, done.stderr[-2000:])
    check = json.loads(match.group(1).replace("&quot;", '"'))
    assert check["decoded"] == check["images"]
    assert check["plots"] >= len(criteria_shown(run)) + 1  # per group of criteria + position
    assert check["gallery"] == GALLERY
    assert check["sections"] == len(page_sections)  # every section the page renders

    shot = tmp_path / "report.png"
    subprocess.run(
        [
            *base,
            "--hide-scrollbars",
            "--window-size=1280,4000",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=180,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the README's analyst queries run as written ------------------------------------------------


def readme_blocks(language: str) -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_readme_queries_run_on_a_real_run(run):
    import duckdb

    base, summary = run
    demo = str(base).replace("\\", "/") + "/"
    statements = [
        s.strip()
        for block in readme_blocks("sql")
        for s in block.replace("cropaudit-demo/", demo).split(";")
        if "SELECT" in s
    ]
    assert len(statements) >= 4
    results = [duckdb.sql(s).fetchall() for s in statements]
    assert all(results), "every README query returns rows"
    by_pair = results[0]
    assert sum(row[5] for row in by_pair) <= summary["survival_rows"]
    assert all(0.0 <= row[6] <= 1.0 for row in by_pair if row[6] is not None)

    namespace: dict = {}
    (code,) = [b for b in readme_blocks("python") if "read_parquet" in b]
    exec(code.replace("cropaudit-demo/", demo), namespace)  # noqa: S102 - our own README
    assert len(namespace["crops"]) == 4 * len(namespace["df"])  # four aspect ratios
    assert len(namespace["est"]) > 0 and len(namespace["decided"]) > 0
