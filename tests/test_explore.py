"""``cropaudit explore``: the server as a real subprocess on a free loopback port, over a
``--models baseline vips-attention`` demo, asked over HTTP and driven in Debian's Chromium through
Playwright (never a downloaded browser).

Checked: the page lists the demo's pairs; an estimate's composites come paged and filtered from
DuckDB, with values bound, never spliced into SQL; a composite is re-rendered and every
cropper's crops are drawn and match their recorded rows; an uploaded image is cropped by every
cropper, a bad one refused with the decoder's reason, a large one by the upload limit; nothing in
the run changes; and in the browser: load, filter, sort, drill down, drop an image and open a
shared URL, with no console error.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

MODELS = ("baseline", "vips-attention")
CROPPERS = ("baseline-centre-surround", "vips-attention")
#: The run's box cropper (crops, no saliency map), decided by libvips: fast, unlike smartcrop.
BOX_CROPPER = CROPPERS[1]


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (and so the listing too)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def models_demo(tmp_path_factory) -> Path:
    """A ``cropaudit demo --models baseline vips-attention`` folder (made once)."""
    from cropaudit.cli import main

    out = tmp_path_factory.mktemp("explore") / "demo"
    assert main(["demo", "--out", str(out), "--no-progress", "--models", *MODELS]) == 0
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, **headers) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str) -> dict:
    status, body = get(url)
    assert status == 200, body[:500]
    return json.loads(body)


def post(url: str, data: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(models_demo):
    """``cropaudit explore DEMO --port P`` in a subprocess; its URL, the run's checksums taken
    before it started, and its output; stopped at the end."""
    before = checksums(models_demo)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cropaudit", "explore", str(models_demo), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CROPAUDIT_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            get(url + "api/run")
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "the explorer did not start within 180 s"
            time.sleep(0.5)
    yield {"url": url, "before": before, "proc": proc}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def demo_pairs(models_demo: Path) -> set[tuple[str, str]]:
    from cropaudit.rundir import read_table

    df = read_table(str(models_demo / "run" / "survival")).to_pandas()
    pairs = df[df.design == "pairs"]
    return set(zip(pairs.group_a, pairs.group_b))


def png(width: int = 240, height: int = 180) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (40, 40, 40))
    ImageDraw.Draw(image).ellipse([150, 40, 220, 120], fill=(240, 200, 170))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def a_comparison(url: str, criterion: str = "crop_1.00") -> dict:
    rows = get_json(url + "api/estimates")["rows"]
    row = next(
        r
        for r in rows
        if r["model_name"] == BOX_CROPPER
        and r["criterion"] == criterion
        and r["comparison"] == "pair"
        and r["design"] == "pairs"
    )
    return {
        "model": row["model_name"],
        "variant": row["variant"],
        "design": row["design"],
        "criterion": row["criterion"],
        "comparison": row["comparison"],
        "ga": row["group_a"],
        "gb": row["group_b"],
        "n": row["n"],
    }


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_page_lists_the_demos_pairs_from_loopback(server, models_demo):
    status, page = get(server["url"])
    assert status == 200 and b"cropaudit explore" in page
    rows = get_json(server["url"] + "api/estimates")["rows"]
    listed = {(r["group_a"], r["group_b"]) for r in rows if r["comparison"] == "pair"}
    assert demo_pairs(models_demo) <= listed
    assert {r["model_name"] for r in rows} == set(CROPPERS)
    assert all(r["ratio_low"] <= r["ratio"] <= r["ratio_high"] for r in rows if r["decisive"])
    info = get_json(server["url"] + "api/run")
    assert info["croppers"] == list(CROPPERS) and "found beside the run" in info["stats_source"]
    # the findings in the words the statistics stage printed and wrote
    written = json.loads((models_demo / "stats" / "findings.json").read_text())["findings"]
    assert [f["text"] for f in info["findings"]] == [f["text"] for f in written]
    assert len(written) > 0 and info["findings_note"] == ""
    # a request addressed to another name (DNS rebinding) is refused
    assert get(server["url"], Host="attacker.example")[0] == 400
    for asset in ("static/explore.js", "static/explore.css"):
        assert get(server["url"] + asset)[0] == 200


@pytest.mark.slow
def test_composites_are_paged_filtered_and_values_never_become_sql(server):
    comparison = a_comparison(server["url"])
    n = comparison.pop("n")

    def page(**extra):
        query = urllib.parse.urlencode({**comparison, **extra})
        return get_json(server["url"] + "api/composites?" + query)

    whole = page(limit=200)
    assert whole["total"] == n == len(whole["rows"])
    first, second = page(limit=5), page(limit=5, offset=5)
    assert [r["composite_id"] for r in first["rows"] + second["rows"]] == [
        r["composite_id"] for r in whole["rows"][:10]
    ]
    for outcome in ("a", "b"):
        chosen = page(outcome=outcome, limit=200)
        assert chosen["total"] == sum(r["outcome"] == outcome for r in whole["rows"])
        assert {r["outcome"] for r in chosen["rows"]} <= {outcome}
    b_first = page(position="b_first", limit=200)
    assert b_first["total"] == n // 2 and {r["position"] for r in b_first["rows"]} == {"b_first"}
    # the baseline has margins: the bounds keep what lies between them
    baseline = {**comparison, "model": "baseline-centre-surround", "criterion": "point"}
    query = urllib.parse.urlencode({**baseline, "limit": 200})
    margins = sorted(
        abs(r["margin"]) for r in get_json(server["url"] + "api/composites?" + query)["rows"]
    )
    low, high = margins[2], margins[-3]
    query = urllib.parse.urlencode({**baseline, "limit": 200, "mmin": low, "mmax": high})
    kept = get_json(server["url"] + "api/composites?" + query)
    assert kept["total"] == sum(low <= m <= high for m in margins)
    assert [abs(r["margin"]) for r in kept["rows"]] == sorted(
        abs(r["margin"]) for r in kept["rows"]
    )
    # values are bound: a quote in a group name matches nothing and breaks nothing
    hostile = {**comparison, "ga": "x' OR '1'='1", "gb": "'; DROP VIEW survival; --"}
    assert (
        get_json(server["url"] + "api/composites?" + urllib.parse.urlencode(hostile))["total"] == 0
    )
    assert page(limit=200)["total"] == n
    for bad in ({"order": "margin; DROP VIEW survival"}, {"limit": 10_000}, {"outcome": "x"}):
        status, body = get(
            server["url"] + "api/composites?" + urllib.parse.urlencode({**comparison, **bad})
        )
        assert status == 400, body


@pytest.mark.slow
def test_a_composite_is_redrawn_by_every_cropper_and_matches_its_rows(server):
    comparison = a_comparison(server["url"])
    comparison.pop("n")
    query = urllib.parse.urlencode({**comparison, "limit": 3})
    for row in get_json(server["url"] + "api/composites?" + query)["rows"]:
        drawn = get_json(
            server["url"] + "api/composite?" + urllib.parse.urlencode({"id": row["composite_id"]})
        )
        assert [p["model_name"] for p in drawn["panels"]] == list(CROPPERS)
        assert {r["model_name"] for r in drawn["rows"]} == set(CROPPERS)
        for panel in drawn["panels"]:
            assert panel["error"] is None and panel["reproduced"] is True
            assert [c["aspect_ratio"] for c in panel["crops"]] == [0.56, 1.0, 1.14, 2.0]
            assert base64.b64decode(panel["png"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        baseline, box = drawn["panels"]
        assert baseline["has_map"] and baseline["point"] is not None
        assert not box["has_map"] and box["point"] is None
    assert get(server["url"] + "api/composite?id=nope")[0] == 404


@pytest.mark.slow
def test_an_upload_is_cropped_by_every_cropper_and_bad_ones_are_refused(server):
    status, drawn = post(server["url"] + "api/crop", png(), "image/png")
    assert status == 200, drawn
    assert (drawn["width"], drawn["height"]) == (240, 180)
    assert [p["model_name"] for p in drawn["panels"]] == list(CROPPERS)
    assert all(len(p["crops"]) == 4 and p["error"] is None for p in drawn["panels"])
    status, body = post(server["url"] + "api/crop", b"not an image at all", "image/png")
    assert (status, body["reason"]) == (422, "image_not_an_image")
    status, body = post(server["url"] + "api/crop", png(8, 400), "image/png")
    assert (status, body["reason"]) == (422, "image_extreme_aspect")
    from cropaudit.explore.app import UPLOAD_LIMIT

    # over the limit: refused from its declared length, before the body is read
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(server["url"]).netloc, timeout=60)
    connection.putrequest("POST", "/api/crop")
    connection.putheader("Content-Type", "image/png")
    connection.putheader("Content-Length", str(UPLOAD_LIMIT + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and b"upload limit" in response.read()
    connection.close()
    # a cross-site form can only send text/plain or form types: refused
    assert post(server["url"] + "api/crop", png(), "text/plain")[0] == 415


@pytest.mark.slow
def test_the_explorer_never_writes_into_the_run(server, models_demo):
    comparison = a_comparison(server["url"])
    comparison.pop("n")
    rows = get_json(server["url"] + "api/composites?" + urllib.parse.urlencode(comparison))["rows"]
    get_json(
        server["url"] + "api/composite?" + urllib.parse.urlencode({"id": rows[0]["composite_id"]})
    )
    assert post(server["url"] + "api/crop", png(), "image/png")[0] == 200
    assert checksums(models_demo) == server["before"]


@pytest.mark.slow
def test_a_modified_run_is_refused_unless_trusted_and_then_says_so(models_demo, tmp_path):
    import pyarrow.parquet as pq

    from cropaudit.errors import UserError
    from cropaudit.explore.app import Explorer

    copy = tmp_path / "demo"
    shutil.copytree(models_demo / "run", copy / "run")
    shutil.copytree(models_demo / "stats", copy / "stats")
    (part,) = (copy / "run" / "survival").glob("*.parquet")
    table = pq.read_table(part)
    pq.write_table(table.slice(1), part)
    with pytest.raises(UserError, match="trust-modified"):
        Explorer.open(str(copy), quiet=True)
    explorer = Explorer.open(str(copy), trust_modified=True, quiet=True)
    assert any("--trust-modified" in w for w in explorer.info["warnings"])


@pytest.mark.slow
def test_without_a_statistics_output_the_estimates_are_computed(models_demo, tmp_path):
    from cropaudit.explore.app import Explorer

    shutil.copytree(models_demo / "run", tmp_path / "run")
    explorer = Explorer.open(str(tmp_path / "run"), replicates=20, quiet=True)
    info = explorer.info
    assert "computed" in info["stats_source"] and info["findings"]
    assert {r["model_name"] for r in explorer.inputs.estimates.to_dict("records")} == set(CROPPERS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing written beside it


def test_only_a_loopback_address_goes_unannounced():
    from cropaudit.explore.app import exposure_notice

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert exposure_notice(host) is None
    for host in ("0.0.0.0", "192.168.1.20", "example.org"):
        notice = exposure_notice(host)
        assert notice is not None and host in notice and "\n" not in notice


# -- in Chromium -------------------------------------------------------------------------------


@pytest.fixture
def explorer_page(page, server):
    """The page, with every console error and uncaught exception collected."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(120_000)
    yield page, server["url"], errors
    assert errors == []


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def table_column(page, table: str, key: str) -> list[str]:
    index = page.eval_on_selector_all(
        f"#{table} thead th", f"(ths) => ths.findIndex((t) => t.dataset.key === '{key}')"
    )
    return page.eval_on_selector_all(
        f"#{table} tbody tr", f"(trs) => trs.map((tr) => tr.cells[{index}].textContent)"
    )


def drill_down(page) -> None:
    """Filter to the box cropper's crop_1.00 pair rows, open the first, then its first
    composite."""
    page.select_option("select[name=model]", BOX_CROPPER)
    page.select_option("select[name=criterion]", "crop_1.00")
    page.select_option("select[name=design]", "pairs")
    rows = page.locator("#estimates tbody tr")
    rows.filter(has=page.locator("td").get_by_text("pair", exact=True)).first.click()
    page.wait_for_selector("#composites tbody tr")
    page.locator("#composites tbody tr").first.click()
    page.wait_for_selector("#composite figure.panel img")


def assert_every_croppers_boxes(page, root: str) -> None:
    for name in CROPPERS:
        panel = page.locator(f"{root} figure.panel[data-model='{name}']")
        assert panel.locator("ul.crops li").count() == 4
        assert panel.locator("img").evaluate("(img) => img.complete && img.naturalWidth > 0")


@pytest.mark.slow
def test_browser_load_filter_and_sort(explorer_page, models_demo):
    page, url, _ = explorer_page
    open_page(page, url)
    findings = get_json(url + "api/run")["findings"]
    assert page.locator("#findings li").all_inner_texts() == [f["text"] for f in findings]
    assert page.locator("#estimates tbody tr").count() == len(
        get_json(url + "api/estimates")["rows"]
    )
    groups = {g for pair in demo_pairs(models_demo) for g in pair}
    text = page.locator("#estimates tbody").inner_text()
    assert all(g in text for g in groups)
    page.select_option("select[name=model]", BOX_CROPPER)
    assert set(table_column(page, "estimates", "model_name")) == {BOX_CROPPER}
    page.fill("input[name=pair]", "light/short")
    rows = page.locator("#estimates tbody tr")
    assert rows.count() > 0
    assert all("light/short" in rows.nth(i).inner_text() for i in range(rows.count()))
    page.fill("input[name=pair]", "")
    page.click("#estimates th[data-key=ratio]")
    ratios = [float(v) for v in table_column(page, "estimates", "ratio") if v != "–"]
    assert ratios == sorted(ratios) and len(ratios) > 2
    page.click("#estimates th[data-key=ratio]")
    ratios = [float(v) for v in table_column(page, "estimates", "ratio") if v != "–"]
    assert ratios == sorted(ratios, reverse=True)
    assert page.locator("#estimates tbody svg.interval line.bar").count() > 0
    assert "sort=ratio" in page.url and f"model={BOX_CROPPER}" in page.url


@pytest.mark.slow
def test_browser_drills_down_to_every_croppers_boxes_and_shares_the_url(explorer_page, browser):
    page, url, errors = explorer_page
    open_page(page, url)
    drill_down(page)
    assert_every_croppers_boxes(page, "#composite")
    assert page.locator("#composite figure.untinted img").count() == 1
    assert page.locator("#composite-rows details").count() == len(CROPPERS)
    assert "[object" not in page.locator("#composite-section").inner_text()
    page.select_option("select[name=position]", "b_first")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#composites tbody tr')].every("
        "(tr) => tr.cells[1].textContent === 'b_first')"
    )
    shared = page.url
    assert "c=" in shared and "sel=" in shared and "position=b_first" in shared
    other = browser.new_page()
    other.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    other.on("pageerror", lambda e: errors.append(str(e)))
    other.set_default_timeout(120_000)
    open_page(other, shared)
    other.wait_for_selector("#composite figure.panel img")
    assert other.locator("#composite-id").inner_text() == page.locator("#composite-id").inner_text()
    assert other.locator("select[name=position]").input_value() == "b_first"
    assert other.locator("#composites tbody tr.selected").count() <= 1
    assert_every_croppers_boxes(other, "#composite")
    other.close()


@pytest.mark.slow
def test_browser_drop_an_image(explorer_page):
    page, url, _ = explorer_page
    open_page(page, url)
    data = base64.b64encode(png()).decode()
    transfer = page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const t = new DataTransfer();
            t.items.add(new File([bytes], "mine.png", {type: "image/png"}));
            return t;
        }""",
        data,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#upload figure.panel img")
    assert_every_croppers_boxes(page, "#upload")
    assert "cropped by 2 cropper(s)" in page.locator("#upload-status").inner_text()
