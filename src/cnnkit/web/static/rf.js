// 4. Receptive-field explorer: a layer stack in cnnkit's rf notation (or a preset) goes to
// POST /api/rf; the page shows field size, jump and start per layer beside the chapter's
// simplified formula, and draws the fields growing over an input.

import { postJSON } from "./api.js";
import { nameKey, onLangChange, t, tServer } from "./i18n.js";
import { fmt } from "./maps.js";
import { reportError } from "./messages.js";

// The chapter's VGG-like stack (section 1.3), the first thing shown.
const CHAPTER_PRESET = "vgg-like";
const CHAPTER_STACK = "conv3/p1,conv3/p1,pool2,conv3/p1,conv3/p1,pool2";
const CUSTOM = "";
const PALETTE = ["#3b6fd8", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1f78b4"];

const rf = { result: null, selected: -1, presets: [], details: {}, started: false, seq: 0 };
const $ = (id) => document.getElementById(id);

function pair(v) {
  return Array.isArray(v) ? v : [v, v];
}

function pairText(v) {
  const [a, b] = pair(v);
  return a === b ? fmt(a) : `${fmt(a)}×${fmt(b)}`;
}

function fillPresets(names) {
  const select = $("rf-preset");
  const current = select.value;
  select.replaceChildren();
  const custom = document.createElement("option");
  custom.value = CUSTOM;
  custom.textContent = t("rf.custom");
  select.append(custom);
  for (const name of names) {
    const o = document.createElement("option");
    o.value = name;
    o.textContent = name;
    if (rf.details[name]) o.title = presetText(rf.details[name]);
    select.append(o);
  }
  select.value = names.includes(current) ? current : CUSTOM;
  describePreset();
}

function describePreset() {
  const d = rf.details[$("rf-preset").value];
  $("rf-preset-desc").textContent = d ? presetText(d) : "";
}

function presetText(detail) {
  return tServer(nameKey("rf.preset_", detail.name), detail.description);
}

function withSize(payload) {
  const n = Math.round(Number($("rf-input-size").value));
  return Number.isFinite(n) && n >= 1 ? { ...payload, input_size: n } : payload;
}

async function run(payload) {
  rf.seq += 1;
  const mine = rf.seq;
  const form = $("rf-form");
  form.dataset.state = "loading";
  try {
    const result = await postJSON("/api/rf", withSize(payload));
    if (mine !== rf.seq) return;
    rf.result = result;
    rf.selected = result.layers.length - 1;
    for (const d of result.preset_details || []) rf.details[d.name] = d;
    if (Array.isArray(result.presets)) {
      rf.presets = result.presets.map((p) => (typeof p === "string" ? p : p.name));
      fillPresets(rf.presets);
    }
    if (typeof result.spec === "string") $("rf-layers").value = result.spec;
    if (typeof result.preset === "string") {
      $("rf-preset").value = result.preset;
      describePreset();
    }
    render();
    form.dataset.state = "ready";
  } catch (err) {
    if (mine === rf.seq) form.dataset.state = "error";
    reportError(err, t("rf.failed"));
  }
}

function renderTable() {
  const body = $("rf-table").tBodies[0];
  body.replaceChildren();
  if (!rf.result) return;
  rf.result.layers.forEach((layer, i) => {
    const tr = document.createElement("tr");
    tr.dataset.index = String(i);
    tr.tabIndex = 0;
    if (i === rf.selected) tr.classList.add("linked");
    const simplified = pair(layer.simplified);
    const differs = pair(layer.size).some((v, a) => v !== simplified[a]);
    const cells = [
      layer.name,
      pairText(layer.size),
      pairText(layer.jump),
      pairText(layer.start),
      layer.output ? layer.output.join("×") : "—",
      pairText(layer.simplified),
    ];
    cells.forEach((text, c) => {
      const td = document.createElement("td");
      if (c === 0) {
        const name = document.createElement("span");
        name.className = "layer-name";
        name.textContent = layer.name;
        if (layer.notation) name.title = layer.notation;
        td.append(name);
      } else {
        td.textContent = text;
      }
      if (c > 0) td.className = "num";
      if (c === 0) {
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.backgroundColor = PALETTE[i % PALETTE.length];
        td.prepend(swatch);
      }
      if (c === 5 && differs) {
        td.classList.add("differs");
        td.title = t("rf.differs");
        const tag = document.createElement("span");
        tag.className = "differs-tag";
        tag.textContent = t("rf.differs");
        td.append(" ", tag);
      }
      tr.append(td);
    });
    const select = () => {
      rf.selected = i;
      render();
    };
    tr.addEventListener("click", select);
    tr.addEventListener("mouseenter", select);
    tr.addEventListener("focus", select);
    body.append(tr);
  });
}

/** Every layer's field drawn centred on one input pixel; dashed: the chapter's simplified R. */
function renderDrawing() {
  const canvas = $("rf-canvas");
  const ctx = canvas.getContext("2d");
  const size = canvas.width;
  ctx.clearRect(0, 0, size, size);
  const legend = $("rf-legend");
  legend.replaceChildren();
  if (!rf.result || !rf.result.layers.length) return;
  const layers = rf.result.layers;
  let biggest = 1;
  for (const l of layers) biggest = Math.max(biggest, ...pair(l.size), ...pair(l.simplified));
  const extent = biggest + 4; // input pixels shown across the drawing
  const cell = size / extent;
  const mid = extent / 2;
  // The input: a light pixel grid (every pixel while they are large enough to see).
  ctx.fillStyle = "#fbfbfd";
  ctx.fillRect(0, 0, size, size);
  const every = cell >= 4 ? 1 : Math.ceil(4 / cell);
  ctx.strokeStyle = "#e3e5ee";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let k = 0; k <= extent; k += every) {
    const p = Math.round(k * cell) + 0.5;
    ctx.moveTo(p, 0);
    ctx.lineTo(p, size);
    ctx.moveTo(0, p);
    ctx.lineTo(size, p);
  }
  ctx.stroke();
  // The centre pixel (the unit's centre).
  const c0 = Math.floor(mid);
  ctx.fillStyle = "#1d2433";
  ctx.fillRect(c0 * cell, c0 * cell, cell, cell);
  const box = (h, w) => {
    const top = c0 + 0.5 - h / 2;
    const left = c0 + 0.5 - w / 2;
    return [left * cell, top * cell, w * cell, h * cell];
  };
  layers.forEach((l, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const strong = i === rf.selected;
    const [h, w] = pair(l.size);
    ctx.strokeStyle = colour;
    ctx.lineWidth = strong ? 3 : 1.5;
    ctx.setLineDash([]);
    ctx.globalAlpha = strong || rf.selected < 0 ? 1 : 0.55;
    ctx.strokeRect(...box(h, w));
    if (strong) {
      ctx.fillStyle = colour;
      ctx.globalAlpha = 0.1;
      ctx.fillRect(...box(h, w));
      ctx.globalAlpha = 1;
      const [sh, sw] = pair(l.simplified);
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#1d2433";
      ctx.strokeRect(...box(sh, sw));
      ctx.setLineDash([]);
    }
    ctx.globalAlpha = 1;
  });
  const sel = layers[rf.selected];
  const add = (cls, text) => {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    legend.append(s);
  };
  if (sel) {
    add("legend-true", t("rf.legend_true", { name: sel.name, size: pairText(sel.size) }));
    add("legend-simplified", t("rf.legend_simplified", { size: pairText(sel.simplified) }));
  }
  add("legend-centre", t("rf.legend_centre"));
}

function render() {
  renderTable();
  renderDrawing();
}

function onSubmit(event) {
  event.preventDefault();
  const text = $("rf-layers").value.trim();
  $("rf-preset").value = CUSTOM;
  run({ layers: text });
}

function onPreset() {
  const name = $("rf-preset").value;
  if (name) run({ preset: name });
}

export function showRf() {
  if (rf.started) return;
  rf.started = true;
  $("rf-layers").value = CHAPTER_STACK;
  run({ preset: CHAPTER_PRESET });
}

export function initRf() {
  $("rf-form").addEventListener("submit", onSubmit);
  $("rf-preset").addEventListener("change", onPreset);
  $("rf-input-size").addEventListener("change", () => {
    const name = $("rf-preset").value;
    run(name ? { preset: name } : { layers: $("rf-layers").value.trim() });
  });
  onLangChange(() => {
    fillPresets(rf.presets);
    render();
  });
}
