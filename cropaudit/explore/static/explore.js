// cropaudit explore: the page's script. Plain DOM, no library; every request goes to this app.
// The page's state (filters, sort, selection, composite) lives in the URL's query string.
"use strict";

const KEY = ["model_name", "variant", "design", "criterion", "comparison", "group_a", "group_b"];
const COLUMNS = [
  ["model_name", "cropper"], ["variant", "variant"], ["design", "design"],
  ["criterion", "criterion"], ["comparison", "comparison"], ["group_a", "group a"],
  ["group_b", "group b"], ["n", "n"], ["decisive", "decisive"], ["wins_a", "a wins"],
  ["wins_b", "b wins"], ["ratio", "survival ratio"], ["ratio_low", "low"],
  ["ratio_high", "high"], ["interval", "interval (0 to 1, line at 0.5)"],
  ["ratio_effective_n", "effective n"], ["ratio_p_holm", "p (Holm)"],
  ["p_binomial_holm", "p binomial (Holm)"],
];
const FILTERS = { model: "model_name", variant: "variant", criterion: "criterion", design: "design" };
const PAGE = 25;
const CROP_COLOURS = ["rgb(0,200,255)", "rgb(0,255,0)", "rgb(255,200,0)", "rgb(255,0,255)",
  "rgb(255,255,255)"];

let estimates = [];
let columns = [];
let state = {};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return String(v);
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// -- state in the URL -------------------------------------------------------------------------

function readState() {
  state = Object.fromEntries(new URLSearchParams(location.search));
}

function writeState(push) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v !== "" && v !== undefined) params.set(k, v);
  const url = location.pathname + (params.toString() ? "?" + params : "");
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}

function setState(changes, push) {
  Object.assign(state, changes);
  for (const k of Object.keys(state)) if (state[k] === "" || state[k] === undefined) delete state[k];
  writeState(push);
}

function selection() {
  if (!state.sel) return null;
  try {
    const values = JSON.parse(state.sel);
    return Object.fromEntries(KEY.map((k, i) => [k, values[i]]));
  } catch (e) {
    return null;
  }
}

// -- run and findings ------------------------------------------------------------------------

function showRun(info) {
  document.getElementById("run").textContent =
    `${info.run_dir}: config ${info.config}, ${info.rows} survival rows, croppers ` +
    info.croppers.join(", ");
  const warnings = document.getElementById("warnings");
  warnings.replaceChildren(...info.warnings.map((w) => el("p", { class: "warn" }, w)));
  document.getElementById("stats-source").textContent = info.stats_source;
  document.getElementById("findings-note").textContent = info.findings_note;
  document.getElementById("findings").replaceChildren(
    ...info.findings.map((f) => el("li", { class: f.verdict }, f.text)));
}

// -- estimates table ------------------------------------------------------------------------

function intervalCell(row) {
  const w = 160, h = 14, x = (v) => 4 + v * (w - 8);
  const box = svg("svg", { class: "interval", width: w, height: h, role: "img" });
  box.append(svg("line", { x1: x(0), x2: x(1), y1: h / 2, y2: h / 2, stroke: "#ccc" }));
  box.append(svg("line", { x1: x(0.5), x2: x(0.5), y1: 1, y2: h - 1, stroke: "#888" }));
  if (row.ratio_low !== null && row.ratio_high !== null) {
    const excludes = row.ratio_low > 0.5 || row.ratio_high < 0.5;
    box.append(svg("line", {
      x1: x(row.ratio_low), x2: x(row.ratio_high), y1: h / 2, y2: h / 2,
      stroke: excludes ? "#b02020" : "#2050b0", "stroke-width": 3, class: "bar",
    }));
  }
  if (row.ratio !== null) box.append(svg("circle", { cx: x(row.ratio), cy: h / 2, r: 3 }));
  const title = svg("title", {});
  title.textContent = `${fmt(row.ratio)} [${fmt(row.ratio_low)}, ${fmt(row.ratio_high)}]`;
  box.append(title);
  return el("td", {}, box);
}

function fillSelect(select, values, current) {
  select.replaceChildren(el("option", { value: "" }, "all"),
    ...values.map((v) => el("option", { value: v, selected: v === current }, v)));
}

function setUpFilters() {
  const form = document.getElementById("filters");
  for (const [name, column] of Object.entries(FILTERS)) {
    const values = [...new Set(estimates.map((r) => r[column]))].sort();
    fillSelect(form.elements[name], values, state[name]);
  }
  form.elements.pair.value = state.pair || "";
  form.addEventListener("input", () => {
    const changes = {};
    for (const name of [...Object.keys(FILTERS), "pair"]) changes[name] = form.elements[name].value;
    setState(changes);
    drawEstimates();
  });
}

function visibleRows() {
  const pair = (state.pair || "").toLowerCase();
  let rows = estimates.filter((r) =>
    Object.entries(FILTERS).every(([name, column]) => !state[name] || r[column] === state[name]) &&
    (!pair || `${r.group_a} ${r.group_b}`.toLowerCase().includes(pair)));
  if (state.sort) {
    const key = state.sort === "interval" ? "ratio" : state.sort;
    const sign = state.dir === "desc" ? -1 : 1;
    rows = rows.slice().sort((a, b) => {
      const x = a[key], y = b[key];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sign;
    });
  }
  return rows;
}

function drawEstimates() {
  const table = document.getElementById("estimates");
  table.tHead.replaceChildren(el("tr", {}, columns.map(([key, label]) => el("th", {
    "data-key": key,
    "aria-sort": state.sort === key ? (state.dir === "desc" ? "descending" : "ascending") : null,
    onclick: () => {
      const dir = state.sort === key && state.dir !== "desc" ? "desc" : "asc";
      setState({ sort: key, dir });
      drawEstimates();
    },
  }, label))));
  const rows = visibleRows();
  const selected = state.sel || "";
  table.tBodies[0].replaceChildren(...rows.map((r) => {
    const sel = JSON.stringify(KEY.map((k) => r[k]));
    return el("tr", {
      class: sel === selected ? "selected" : null,
      onclick: () => {
        setState({ sel, page: "", c: "" }, true);
        drawEstimates();
        loadComposites();
      },
    }, columns.map(([key]) => key === "interval" ? intervalCell(r)
      : el("td", { class: typeof r[key] === "number" ? "num" : null }, fmt(r[key]))));
  }));
  document.getElementById("shown").textContent = `${rows.length} of ${estimates.length} rows`;
}

// -- an estimate's composites ----------------------------------------------------------------

function setUpCompositeFilters() {
  const form = document.getElementById("composite-filters");
  for (const name of ["outcome", "position", "mmin", "mmax", "order"]) {
    form.elements[name].value = state[name] || form.elements[name].value;
  }
  form.addEventListener("change", () => {
    const changes = { page: "" };
    for (const name of ["outcome", "position", "mmin", "mmax", "order"]) {
      changes[name] = form.elements[name].value;
    }
    if (changes.order === "margin") changes.order = "";
    setState(changes);
    loadComposites();
  });
  document.getElementById("prev").addEventListener("click", () => turn(-1));
  document.getElementById("next").addEventListener("click", () => turn(1));
}

function turn(step) {
  setState({ page: String(Math.max(0, Number(state.page || 0) + step)) });
  loadComposites();
}

async function loadComposites() {
  const sel = selection();
  const section = document.getElementById("composites-section");
  if (!sel) { section.hidden = true; return; }
  section.hidden = false;
  document.getElementById("selected").textContent =
    `${sel.model_name}, ${sel.criterion}, ${sel.design}: ${sel.group_a} vs ${sel.group_b}` +
    (sel.variant !== "base" ? ` (${sel.variant})` : "");
  const page = Number(state.page || 0);
  const params = new URLSearchParams({
    model: sel.model_name, variant: sel.variant, design: sel.design, criterion: sel.criterion,
    comparison: sel.comparison, ga: sel.group_a, gb: sel.group_b,
    offset: String(page * PAGE), limit: String(PAGE),
  });
  for (const name of ["outcome", "position", "mmin", "mmax", "order"]) {
    if (state[name]) params.set(name, state[name]);
  }
  const info = document.getElementById("page-info");
  let result;
  try {
    result = await getJSON("/api/composites?" + params);
  } catch (e) {
    info.textContent = e.message;
    return;
  }
  const pages = Math.max(1, Math.ceil(result.total / PAGE));
  info.textContent = `page ${page + 1} of ${pages} (${result.total} composites)`;
  document.getElementById("prev").disabled = page <= 0;
  document.getElementById("next").disabled = page + 1 >= pages;
  const heads = ["composite", "position", "outcome", "|margin|", "subject a", "subject b"];
  const table = document.getElementById("composites");
  table.tHead.replaceChildren(el("tr", {}, heads.map((h) => el("th", {}, h))));
  table.tBodies[0].replaceChildren(...result.rows.map((r) => el("tr", {
    "data-id": r.composite_id,
    class: r.composite_id === state.c ? "selected" : null,
    onclick: () => { setState({ c: r.composite_id }, true); loadComposites(); loadComposite(); },
  }, el("td", {}, r.composite_id), el("td", {}, r.seen_position), el("td", {}, r.outcome),
  el("td", { class: "num" }, fmt(r.margin === null ? null : Math.abs(r.margin))),
  el("td", {}, r.a_subject_id), el("td", {}, r.b_subject_id))));
}

// -- a composite, every cropper --------------------------------------------------------------

function legend(ratios) {
  return [el("span", { class: "swatch face-a" }), " face a, ", el("span", { class: "swatch face-b" }),
    " face b; yellow dot: salient point; crop boxes per aspect ratio (h/w): ",
    ...ratios.map((r, i) => [el("span", { class: "swatch", "data-colour": i }), ` ${r} `])];
}

function colourSwatches(root) {
  // colours set through the CSSOM (the page's policy allows no inline style attributes)
  for (const s of root.querySelectorAll(".swatch[data-colour]")) {
    s.style.background = CROP_COLOURS[Number(s.dataset.colour) % CROP_COLOURS.length];
  }
  for (const s of root.querySelectorAll(".swatch.face-a")) s.style.background = "rgb(0,90,255)";
  for (const s of root.querySelectorAll(".swatch.face-b")) s.style.background = "rgb(255,110,0)";
}

function panelFigure(panel) {
  const status = panel.error ? el("span", { class: "bad" }, panel.error)
    : panel.reproduced === true ? el("span", { class: "good" }, "matches its recorded row")
      : panel.reproduced === false ? el("span", { class: "bad" }, "differs from its recorded row")
        : null;
  const point = panel.point ? `salient point (${panel.point[0]}, ${panel.point[1]})`
    : "no salient point (a box cropper)";
  return el("figure", { class: "panel", "data-model": panel.model_name },
    el("img", { src: panel.png, alt: `${panel.model_name}'s crops` }),
    el("figcaption", {}, el("strong", {}, panel.model_name),
      el("div", {}, panel.has_map ? "saliency map tinted red; " : "no saliency map; ", point),
      el("ul", { class: "crops" }, panel.crops.map((c) =>
        el("li", {}, `${c.aspect_ratio}: x ${c.x}, y ${c.y}, ${c.w}×${c.h}`))),
      status));
}

function drawPanels(root, drawn, rows) {
  root.replaceChildren(
    el("figure", { class: "untinted" }, el("img", { src: drawn.untinted, alt: "the image" }),
      el("figcaption", {}, `the image, ${drawn.width}×${drawn.height}, untinted`)),
    ...drawn.panels.map(panelFigure));
  colourSwatches(root);
}

const ROW_FIELDS = ["composite_id", "model_name", "position", "group_a", "group_b",
  "a_subject_id", "b_subject_id", "point_winner", "margin", "salient_x", "salient_y",
  "salient_score", "a_max", "b_max"];

function rowTable(row) {
  const crops = (row.crops || []).map((c) => `${c.aspect_ratio}: ${c.winner}`).join(", ");
  return el("details", { open: true }, el("summary", {}, `survival row of ${row.model_name}`),
    el("table", { class: "row" }, el("tbody", {},
      ROW_FIELDS.map((k) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(row[k])))),
      el("tr", {}, el("th", {}, "crop winners"), el("td", {}, crops)))));
}

async function loadComposite() {
  const section = document.getElementById("composite-section");
  if (!state.c) { section.hidden = true; return; }
  section.hidden = false;
  document.getElementById("composite-id").textContent = state.c;
  const root = document.getElementById("composite");
  root.replaceChildren(el("p", { class: "note" }, "Rendering and cropping…"));
  document.getElementById("composite-rows").replaceChildren();
  let drawn;
  try {
    drawn = await getJSON("/api/composite?" + new URLSearchParams({ id: state.c }));
  } catch (e) {
    root.replaceChildren(el("p", { class: "bad" }, e.message));
    return;
  }
  const ratios = drawn.panels.length ? drawn.panels[0].crops.map((c) => c.aspect_ratio) : [];
  const legendNode = document.getElementById("legend");
  legendNode.replaceChildren(...legend(ratios).flat());
  colourSwatches(legendNode);
  drawPanels(root, drawn);
  document.getElementById("composite-rows").replaceChildren(...drawn.rows.map(rowTable));
}

// -- an image of the user's -------------------------------------------------------------------

async function cropUpload(file) {
  const status = document.getElementById("upload-status");
  const root = document.getElementById("upload");
  status.textContent = `Cropping ${file.name} with every cropper…`;
  let drawn;
  try {
    drawn = await getJSON("/api/crop", {
      method: "POST", body: file,
      headers: { "Content-Type": file.type || "application/octet-stream" },
    });
  } catch (e) {
    status.textContent = `${file.name}: ${e.message}`;
    status.className = "note bad";
    root.replaceChildren();
    return;
  }
  status.textContent = `${file.name}: cropped by ${drawn.panels.length} cropper(s)`;
  status.className = "note";
  drawPanels(root, drawn);
}

function setUpUpload() {
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) cropUpload(file);
  });
  document.getElementById("file").addEventListener("change", (e) => {
    if (e.target.files[0]) cropUpload(e.target.files[0]);
  });
}

// -- start -------------------------------------------------------------------------------------

async function main() {
  readState();
  const [info, table] = await Promise.all([getJSON("/api/run"), getJSON("/api/estimates")]);
  showRun(info);
  estimates = table.rows;
  const present = new Set(estimates.flatMap((r) => Object.keys(r)));
  columns = COLUMNS.filter(([key]) => key === "interval" || present.has(key));
  setUpFilters();
  setUpCompositeFilters();
  setUpUpload();
  drawEstimates();
  loadComposites();
  loadComposite();
  window.addEventListener("popstate", () => {
    readState();
    drawEstimates();
    loadComposites();
    loadComposite();
  });
  document.body.dataset.ready = "1";
}

main().catch((e) => {
  document.getElementById("run").textContent = `Could not load the run: ${e.message}`;
});
