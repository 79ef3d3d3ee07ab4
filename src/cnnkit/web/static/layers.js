// 2. Inside the model: every layer's output (grids of feature maps, vectors as bar strips),
// the unit under the pointer (POST /api/unit: its receptive-field box on the input, exactly as
// the server computed it, its gradient saliency and its value) and the summary table, whose
// rows are linked to the maps.

import { postJSON } from "./api.js";
import { formatInt, onLangChange, t } from "./i18n.js";
import { decodeMap, fmt, lutFor, paintBytes, paintImage } from "./maps.js";
import { reportError } from "./messages.js";
import { onPrediction, state } from "./state.js";

const MAP_TARGET_PX = 56; // displayed size of one feature map's longer side
const BAR_STRIP_MAX = 128; // vectors up to this length are bars; longer ones wrap into a heat strip
const STRIP_COLS = 64;
const BOX_VIEW_PX = 280; // the input views' overlay size

let visible = false;
let dirty = true;
const unit = { pinned: false, key: "", pendingKey: null, inFlight: false, last: null };

function layerMeta(index) {
  const layers = (state.model && state.model.layers) || [];
  return layers.find((l) => l.index === index) || null;
}

function shapeText(shape) {
  return shape.join("×");
}

// ------------------------------------------------------------------ summary table

function compactPair(p) {
  return p[0] === p[1] ? fmt(p[0]) : p.map(fmt).join("×");
}

function rfText(rf) {
  if (!rf) return "—";
  return t("summary.rf_value", { size: shapeText(rf.size), jump: compactPair(rf.jump) });
}

function rfTitle(rf) {
  if (!rf) return "";
  return t("summary.rf_title", {
    size: shapeText(rf.size),
    jump: shapeText(rf.jump),
    start: rf.start.map(fmt).join(", "),
  });
}

export function renderSummary() {
  const model = state.model;
  const table = document.getElementById("summary-table");
  const body = table.tBodies[0];
  body.replaceChildren();
  table.tFoot.replaceChildren();
  if (!model) return;
  for (const layer of model.layers) {
    const tr = document.createElement("tr");
    tr.dataset.index = String(layer.index);
    tr.tabIndex = 0;
    tr.setAttribute("aria-label", t("summary.row_aria", { name: layer.name }));
    const cells = [
      String(layer.index),
      null,
      shapeText(layer.output_shape),
      formatInt(layer.params),
      layer.macs === null || layer.macs === undefined ? "—" : formatInt(layer.macs),
      rfText(layer.rf),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 1) {
        const name = document.createElement("span");
        name.className = `layer-name kind-text-${layer.kind}`;
        name.textContent = layer.name;
        name.title = t(`kind.${layer.kind}`);
        td.append(name);
      } else {
        td.textContent = text;
      }
      if (i === 3 || i === 4) td.className = "num";
      if (i === 5) td.title = rfTitle(layer.rf);
      tr.append(td);
    });
    tr.addEventListener("click", () => linkLayer(layer.index, "table"));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        linkLayer(layer.index, "table");
      }
    });
    body.append(tr);
  }
  const tr = document.createElement("tr");
  const label = document.createElement("th");
  label.scope = "row";
  label.colSpan = 3;
  label.textContent = t("summary.total");
  const params = document.createElement("td");
  params.className = "num";
  params.textContent = formatInt(model.totals.params);
  const macs = document.createElement("td");
  macs.className = "num";
  macs.textContent = model.totals.macs === null ? "—" : formatInt(model.totals.macs);
  tr.append(label, params, macs, document.createElement("td"));
  table.tFoot.append(tr);
}

/** Highlight layer `index` in the table and among the maps; scroll the other side to it. */
export function linkLayer(index, from) {
  for (const el of document.querySelectorAll(".linked")) el.classList.remove("linked");
  const row = document.querySelector(`#summary-table tr[data-index="${index}"]`);
  const block = document.getElementById(`layer-${index}`);
  if (row) row.classList.add("linked");
  if (block) block.classList.add("linked");
  if (from === "table" && block) block.scrollIntoView({ block: "start", behavior: "smooth" });
  if (from !== "table" && row) row.scrollIntoView({ block: "nearest" });
}

// ------------------------------------------------------------------ feature maps

function scaleLegend(lo, hi) {
  const wrap = document.createElement("span");
  wrap.className = "scale";
  const ramp = document.createElement("canvas");
  ramp.className = "ramp";
  const bytes = new Uint8Array(256);
  for (let b = 0; b < 256; b += 1) bytes[b] = b;
  paintBytes(ramp, bytes, 0, 1, 256, lutFor(lo, hi));
  const a = document.createElement("span");
  a.textContent = fmt(lo);
  const b = document.createElement("span");
  b.textContent = fmt(hi);
  wrap.append(a, ramp, b);
  wrap.title = t("inside.scale_title", { min: fmt(lo), max: fmt(hi) });
  return wrap;
}

function blockHeader(layer, meta, decoded) {
  const header = document.createElement("header");
  header.className = "layer-head";
  header.tabIndex = 0;
  const title = document.createElement("h3");
  title.textContent = `${layer.index} · ${layer.name}`;
  const kind = document.createElement("span");
  kind.className = `kind kind-${layer.kind}`;
  kind.textContent = t(`kind.${layer.kind}`);
  const shape = document.createElement("span");
  shape.className = "shape";
  shape.textContent = shapeText(decoded.shape);
  header.append(title, kind, shape, scaleLegend(decoded.min, decoded.max));
  if (meta && meta.rf) {
    const rf = document.createElement("span");
    rf.className = "rf-tag";
    rf.textContent = t("inside.rf_tag", { size: shapeText(meta.rf.size) });
    header.append(rf);
  }
  header.addEventListener("click", () => linkLayer(layer.index, "maps"));
  return header;
}

function spatialGrid(layer, decoded) {
  const [c, h, w] = decoded.shape;
  const k = Math.max(1, Math.round(MAP_TARGET_PX / Math.max(h, w)));
  const lut = lutFor(decoded.min, decoded.max);
  const grid = document.createElement("div");
  grid.className = "map-grid";
  for (let ch = 0; ch < c; ch += 1) {
    const cell = document.createElement("div");
    cell.className = "map-cell";
    const canvas = document.createElement("canvas");
    canvas.className = "fmap pixelated";
    canvas.dataset.layer = String(layer.index);
    canvas.dataset.channel = String(ch);
    canvas.dataset.h = String(h);
    canvas.dataset.w = String(w);
    paintBytes(canvas, decoded.bytes, ch * h * w, h, w, lut);
    canvas.style.width = `${w * k}px`;
    canvas.style.height = `${h * k}px`;
    canvas.setAttribute("aria-label", t("inside.map_aria", { name: layer.name, channel: ch }));
    const label = document.createElement("span");
    label.className = "map-label";
    label.textContent = String(ch);
    cell.append(canvas, label);
    grid.append(cell);
  }
  return grid;
}

/** A vector (F,): bars from a zero line for short ones, a wrapped heat strip for long ones. */
function vectorStrip(layer, decoded) {
  const f = decoded.shape[0];
  const canvas = document.createElement("canvas");
  canvas.className = "fvec";
  canvas.dataset.layer = String(layer.index);
  canvas.dataset.f = String(f);
  canvas.setAttribute("aria-label", t("inside.vector_aria", { name: layer.name, count: f }));
  const lo = Math.min(0, decoded.min);
  const hi = Math.max(0, decoded.max);
  if (f <= BAR_STRIP_MAX) {
    const cw = Math.max(3, Math.floor(520 / f));
    const height = 72;
    canvas.width = cw * f;
    canvas.height = height;
    canvas.dataset.mode = "bars";
    canvas.dataset.cellw = String(cw);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#f6f7fb";
    ctx.fillRect(0, 0, canvas.width, height);
    const span = hi - lo || 1;
    const zeroY = height * (hi / span);
    for (let i = 0; i < f; i += 1) {
      const v = decoded.value(i);
      const y = height * ((hi - v) / span);
      ctx.fillStyle = v >= 0 ? "#d9622b" : "#2166ac";
      ctx.fillRect(i * cw + 1, Math.min(y, zeroY), cw - 2, Math.max(1, Math.abs(zeroY - y)));
    }
    ctx.fillStyle = "#8a8fa3";
    ctx.fillRect(0, Math.round(zeroY), canvas.width, 1);
    const classes = (state.model && state.model.classes) || [];
    if (classes.length === f && f <= 20) {
      const labels = document.createElement("div");
      labels.className = "vec-labels";
      for (const name of classes) {
        const s = document.createElement("span");
        s.textContent = name;
        s.style.width = `${cw}px`;
        labels.append(s);
      }
      const wrap = document.createElement("div");
      wrap.className = "vec-wrap";
      wrap.append(canvas, labels);
      return wrap;
    }
  } else {
    const rows = Math.ceil(f / STRIP_COLS);
    const bytes = new Uint8Array(rows * STRIP_COLS);
    bytes.set(decoded.bytes);
    paintBytes(canvas, bytes, 0, rows, STRIP_COLS, lutFor(decoded.min, decoded.max));
    canvas.dataset.mode = "strip";
    canvas.classList.add("pixelated");
    canvas.style.width = `${STRIP_COLS * 5}px`;
    canvas.style.height = `${rows * 5}px`;
  }
  const wrap = document.createElement("div");
  wrap.className = "vec-wrap";
  wrap.append(canvas);
  return wrap;
}

function renderMaps() {
  const host = document.getElementById("maps");
  const empty = document.getElementById("maps-empty");
  const prediction = state.prediction;
  host.replaceChildren();
  empty.hidden = Boolean(prediction);
  dirty = false;
  if (!prediction || !prediction.layers) return;
  for (const layer of prediction.layers) {
    const decoded = decodeMap(layer.maps);
    const block = document.createElement("section");
    block.className = "layer-block";
    block.id = `layer-${layer.index}`;
    block.dataset.index = String(layer.index);
    block.dataset.kind = layer.kind;
    block.append(blockHeader(layer, layerMeta(layer.index), decoded));
    block.append(decoded.shape.length === 3 ? spatialGrid(layer, decoded) : vectorStrip(layer, decoded));
    host.append(block);
  }
  const linked = document.querySelector("#summary-table tr.linked");
  if (linked) linkLayer(Number(linked.dataset.index), "restore");
}

// ------------------------------------------------------------------ units

/** The unit (layer, channel, y, x) under a pointer event on a map canvas, or null. */
function unitAt(event) {
  const canvas = event.target;
  if (!(canvas instanceof HTMLCanvasElement)) return null;
  const rect = canvas.getBoundingClientRect();
  const fx = (event.clientX - rect.left) / rect.width;
  const fy = (event.clientY - rect.top) / rect.height;
  if (fx < 0 || fy < 0 || fx >= 1 || fy >= 1) return null;
  const layer = Number(canvas.dataset.layer);
  if (canvas.classList.contains("fmap")) {
    const h = Number(canvas.dataset.h);
    const w = Number(canvas.dataset.w);
    return { layer, channel: Number(canvas.dataset.channel), y: Math.floor(fy * h), x: Math.floor(fx * w) };
  }
  if (canvas.classList.contains("fvec")) {
    const f = Number(canvas.dataset.f);
    let index;
    if (canvas.dataset.mode === "bars") index = Math.floor(fx * f);
    else index = Math.floor(fy * canvas.height) * STRIP_COLS + Math.floor(fx * canvas.width);
    if (index >= f) return null;
    return { layer, channel: index, y: 0, x: 0 };
  }
  return null;
}

function keyOf(u) {
  return `${u.layer}/${u.channel}/${u.y}/${u.x}`;
}

function markUnit(u) {
  for (const m of document.querySelectorAll(".unit-marker")) m.remove();
  if (!u) return;
  const canvas = document.querySelector(
    `canvas[data-layer="${u.layer}"][data-channel="${u.channel}"], canvas.fvec[data-layer="${u.layer}"]`,
  );
  if (!canvas) return;
  const marker = document.createElement("span");
  marker.className = "unit-marker" + (unit.pinned ? " pinned" : "");
  const cw = canvas.clientWidth;
  const chh = canvas.clientHeight;
  if (canvas.classList.contains("fmap")) {
    const h = Number(canvas.dataset.h);
    const w = Number(canvas.dataset.w);
    marker.style.left = `${canvas.offsetLeft + (u.x * cw) / w}px`;
    marker.style.top = `${canvas.offsetTop + (u.y * chh) / h}px`;
    marker.style.width = `${cw / w}px`;
    marker.style.height = `${chh / h}px`;
  } else if (canvas.dataset.mode === "bars") {
    const f = Number(canvas.dataset.f);
    marker.style.left = `${canvas.offsetLeft + (u.channel * cw) / f}px`;
    marker.style.top = `${canvas.offsetTop}px`;
    marker.style.width = `${cw / f}px`;
    marker.style.height = `${chh}px`;
  } else {
    const rows = canvas.height;
    marker.style.left = `${canvas.offsetLeft + ((u.channel % STRIP_COLS) * cw) / STRIP_COLS}px`;
    marker.style.top = `${canvas.offsetTop + (Math.floor(u.channel / STRIP_COLS) * chh) / rows}px`;
    marker.style.width = `${cw / STRIP_COLS}px`;
    marker.style.height = `${chh / rows}px`;
  }
  canvas.parentElement.append(marker);
}

async function requestUnit(u) {
  const prediction = state.prediction;
  if (!prediction) return;
  if (unit.inFlight) {
    unit.pendingKey = u;
    return;
  }
  unit.inFlight = true;
  const info = document.getElementById("unit-info");
  info.dataset.state = "loading";
  try {
    const result = await postJSON("/api/unit", {
      pixels: prediction.pixels,
      layer: u.layer,
      channel: u.channel,
      y: u.y,
      x: u.x,
    });
    if (prediction === state.prediction) {
      unit.last = { unit: u, result };
      renderUnit();
    }
  } catch (err) {
    info.dataset.state = "error";
    reportError(err, t("inside.unit_failed"));
  } finally {
    unit.inFlight = false;
    if (unit.pendingKey) {
      const next = unit.pendingKey;
      unit.pendingKey = null;
      requestUnit(next);
    }
  }
}

function pick(u, pin) {
  if (!u) return;
  const key = keyOf(u);
  if (pin) {
    unit.pinned = !(unit.pinned && key === unit.key);
  } else if (unit.pinned || key === unit.key) {
    return;
  }
  unit.key = key;
  markUnit(u);
  linkLayer(u.layer, "unit");
  requestUnit(u);
}

function drawBox(canvas, box, hw, outlineOnly = false) {
  const [h, w] = hw;
  const s = Math.max(1, Math.floor(BOX_VIEW_PX / Math.max(h, w)));
  canvas.width = w * s;
  canvas.height = h * s;
  canvas.dataset.scale = String(s);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!box) return;
  // The clipped box, inclusive-exclusive in input pixels: canvas pixels [left*s, right*s).
  const x0 = box.left * s;
  const y0 = box.top * s;
  const bw = (box.right - box.left) * s;
  const bh = (box.bottom - box.top) * s;
  if (!outlineOnly) {
    ctx.fillStyle = "rgba(255, 196, 0, 0.22)";
    ctx.fillRect(x0, y0, bw, bh);
  }
  ctx.strokeStyle = "#ffc400";
  ctx.lineWidth = 2;
  ctx.strokeRect(x0 + 1, y0 + 1, bw - 2, bh - 2);
}

function inputHW() {
  const shape = state.model ? state.model.input_shape : [1, 28, 28];
  return [shape[shape.length - 2], shape[shape.length - 1]];
}

function renderUnitViews() {
  const prediction = state.prediction;
  const input = document.getElementById("unit-input");
  const sal = document.getElementById("unit-saliency");
  const hw = inputHW();
  if (!prediction) {
    for (const c of [input, sal]) c.getContext("2d").clearRect(0, 0, c.width, c.height);
    drawBox(document.getElementById("unit-box"), null, hw);
    drawBox(document.getElementById("unit-box-saliency"), null, hw);
    return;
  }
  paintImage(input, decodeMap(prediction.input));
}

function infoRow(dl, key, value) {
  const dt = document.createElement("dt");
  dt.textContent = t(key);
  const dd = document.createElement("dd");
  dd.textContent = value;
  dl.append(dt, dd);
}

function boxText(b) {
  return t("inside.box_value", {
    top: b.top,
    bottom: b.bottom - 1,
    left: b.left,
    right: b.right - 1,
    h: b.bottom - b.top,
    w: b.right - b.left,
  });
}

function renderUnit() {
  const info = document.getElementById("unit-info");
  info.replaceChildren();
  const boxCanvas = document.getElementById("unit-box");
  if (!unit.last || !state.prediction) {
    info.dataset.state = "empty";
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = t("inside.unit_none");
    info.append(p);
    drawBox(boxCanvas, null, inputHW());
    drawBox(document.getElementById("unit-box-saliency"), null, inputHW());
    return;
  }
  const { unit: u, result } = unit.last;
  const meta = layerMeta(u.layer);
  const spatial = meta ? meta.spatial : true;
  infoRow(info, "inside.info_layer", `${u.layer} · ${meta ? meta.name : ""}`);
  infoRow(
    info,
    "inside.info_unit",
    spatial
      ? t("inside.unit_value_spatial", { channel: u.channel, y: u.y, x: u.x })
      : t("inside.unit_value_vector", { index: u.channel }),
  );
  infoRow(info, "inside.info_value", result.value === null ? "—" : fmt(result.value));
  if (result.source) {
    // a flattened feature is one unit of the spatial layer before it: that unit's field
    const src = result.source;
    const srcMeta = layerMeta(src.layer);
    infoRow(
      info,
      "inside.info_source",
      t("inside.source_value", {
        layer: `${src.layer} · ${srcMeta ? srcMeta.name : ""}`,
        channel: src.channel,
        y: src.y,
        x: src.x,
      }),
    );
  }
  info.dataset.source = result.source ? JSON.stringify(result.source) : "";
  if (result.box && result.clipped) {
    infoRow(info, "inside.info_box", boxText(result.box));
    const same = ["top", "left", "bottom", "right"].every((k) => result.box[k] === result.clipped[k]);
    infoRow(info, "inside.info_clipped", same ? t("inside.clipped_same") : boxText(result.clipped));
  } else {
    infoRow(info, "inside.info_box", t("inside.no_box", { status: result.rf_status || "" }));
  }
  infoRow(info, "inside.info_state", unit.pinned ? t("inside.pinned") : t("inside.hovering"));
  info.dataset.state = "ready";
  info.dataset.unit = keyOf(u);
  info.dataset.box = JSON.stringify(result.box);
  info.dataset.clipped = JSON.stringify(result.clipped);
  info.dataset.value = String(result.value);
  drawBox(boxCanvas, result.clipped || null, inputHW());
  drawBox(document.getElementById("unit-box-saliency"), result.clipped || null, inputHW(), true);
  const sal = decodeMap(result.saliency);
  const [h, w] = sal.shape.slice(-2);
  paintBytes(document.getElementById("unit-saliency"), sal.bytes, 0, h, w, lutFor(0, 1));
}

function onMapsPointer(event, pin) {
  const u = unitAt(event);
  if (u) pick(u, pin);
}

// ------------------------------------------------------------------ wiring

export function showInside(isVisible) {
  visible = isVisible;
  if (visible && dirty) renderMaps();
}

export function initLayers() {
  const maps = document.getElementById("maps");
  maps.addEventListener("pointermove", (e) => {
    if (e.pointerType === "mouse") onMapsPointer(e, false);
  });
  maps.addEventListener("click", (e) => onMapsPointer(e, true));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && unit.pinned) {
      unit.pinned = false;
      renderUnit();
      markUnit(null);
    }
  });
  onPrediction(() => {
    dirty = true;
    renderUnitViews();
    if (unit.last && state.prediction) {
      const u = unit.last.unit;
      unit.last = null;
      requestUnit(u); // the same unit, on the new input
    } else {
      unit.last = null;
      renderUnit();
    }
    if (visible) renderMaps();
    if (unit.key && unit.last === null && state.prediction) {
      const [layer, channel, y, x] = unit.key.split("/").map(Number);
      window.requestAnimationFrame(() => markUnit({ layer, channel, y, x }));
    }
  });
  onLangChange(() => {
    renderSummary();
    dirty = true;
    if (visible) renderMaps();
    renderUnit();
  });
  renderUnit();
}
