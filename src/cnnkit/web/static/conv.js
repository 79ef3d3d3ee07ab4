// 3. Convolution explorer (the chapter's sections 1.2-1.3): an input, a kernel (named or an
// editable grid), stride, padding, dilation and padding mode go to POST /api/conv; the page shows
// the output cnnkit.conv2d computed, the output-size formula with its numbers, and a step-through
// of the sliding window (region on the padded input, element-wise products, their sum).

import { getJSON, postJSON } from "./api.js";
import { nameKey, onLangChange, t, tServer } from "./i18n.js";
import { colourFor, fmt } from "./maps.js";
import { hideMessage, reportError } from "./messages.js";
import { debounce, state } from "./state.js";

const PLAY_MS = 650;
const NUMBERS_MAX_COLS = 16; // wider grids show colours only (values in the tooltip)
const UPLOAD_MAX_SIDE = 28; // an uploaded image is reduced to at most this many pixels a side

const conv = {
  kernels: [], // GET /api/kernels
  result: null, // the latest POST /api/conv response
  step: 0,
  timer: null,
  resultDilation: 1, // the dilation the shown result was computed with
  failed: false, // the last request was refused (its message is shown)
  uploaded: null, // [[gray 0..255]] of the uploaded image
  offset: [0, 0], // where the input sits inside the padded input
  seq: 0,
};

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ grids of numbers

/** A light cell colour: white to blue for v >= 0 grids, blue-white-red around 0 for signed ones. */
function softColour(v, lo, hi) {
  let rgb;
  if (lo < 0 && hi > 0) {
    rgb = colourFor(v, lo, hi);
  } else {
    const u = hi > lo ? (v - lo) / (hi - lo) : 0;
    rgb = [255 - 120 * u, 255 - 85 * u, 255 - 30 * u];
  }
  const mix = (c) => Math.round(255 - (255 - c) * 0.6);
  return `rgb(${mix(rgb[0])}, ${mix(rgb[1])}, ${mix(rgb[2])})`;
}

function extent(matrix) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of matrix) {
    for (const v of row) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return [lo, hi];
}

/**
 * A grid of cells for a 2-D array. `mark(i, j)` returns extra class names for a cell;
 * `onCell(i, j)` makes cells clickable.
 */
function makeGrid(matrix, { name, mark, onCell, numbers } = {}) {
  const rows = matrix.length;
  const cols = rows ? matrix[0].length : 0;
  const showNumbers = numbers ?? cols <= NUMBERS_MAX_COLS;
  const grid = document.createElement("div");
  grid.className = "grid" + (showNumbers ? "" : " compact");
  grid.style.gridTemplateColumns = `repeat(${cols}, auto)`;
  grid.setAttribute("role", "table");
  if (name) grid.setAttribute("aria-label", name);
  grid.dataset.rows = String(rows);
  grid.dataset.cols = String(cols);
  const [lo, hi] = extent(matrix);
  for (let i = 0; i < rows; i += 1) {
    for (let j = 0; j < cols; j += 1) {
      const v = matrix[i][j];
      const cell = document.createElement(onCell ? "button" : "span");
      if (onCell) {
        cell.type = "button";
        cell.addEventListener("click", () => onCell(i, j));
      }
      cell.className = "cell" + (mark ? ` ${mark(i, j)}` : "");
      cell.dataset.i = String(i);
      cell.dataset.j = String(j);
      cell.dataset.value = String(v);
      cell.style.backgroundColor = softColour(v, lo, hi);
      cell.title = `[${i}, ${j}] = ${fmt(v)}`;
      if (showNumbers) cell.textContent = fmt(v);
      grid.append(cell);
    }
  }
  return grid;
}

// ------------------------------------------------------------------ kernel grid (editable)

function kernelSize() {
  return Math.min(7, Math.max(1, Math.round(Number($("conv-ksize").value) || 3)));
}

function fillKernelGrid(values) {
  const host = $("conv-grid");
  const kh = values.length;
  const kw = kh ? values[0].length : 0;
  host.replaceChildren();
  host.style.gridTemplateColumns = `repeat(${kw}, 3.6em)`;
  for (let i = 0; i < kh; i += 1) {
    for (let j = 0; j < kw; j += 1) {
      const input = document.createElement("input");
      input.type = "number";
      input.step = "any";
      input.value = String(Number(values[i][j].toPrecision(6)));
      input.dataset.i = String(i);
      input.dataset.j = String(j);
      input.setAttribute("aria-label", t("conv.kernel_cell", { i, j }));
      input.addEventListener("input", () => {
        $("conv-kernel").value = "custom";
        describeKernel();
        schedule();
      });
      host.append(input);
    }
  }
  if (kh === kw) $("conv-ksize").value = String(kh);
}

function gridValues() {
  const host = $("conv-grid");
  const inputs = [...host.querySelectorAll("input")];
  if (!inputs.length) return null;
  const kh = Math.max(...inputs.map((el) => Number(el.dataset.i))) + 1;
  const kw = Math.max(...inputs.map((el) => Number(el.dataset.j))) + 1;
  const values = Array.from({ length: kh }, () => new Array(kw).fill(0));
  for (const el of inputs) {
    const v = Number(el.value);
    values[Number(el.dataset.i)][Number(el.dataset.j)] = Number.isFinite(v) ? v : 0;
  }
  return values;
}

function resizeKernel() {
  const k = kernelSize();
  const old = gridValues() || [];
  const values = Array.from({ length: k }, (_, i) =>
    Array.from({ length: k }, (_, j) => (old[i] && old[i][j] !== undefined ? old[i][j] : 0)),
  );
  $("conv-kernel").value = "custom";
  fillKernelGrid(values);
  describeKernel();
  schedule();
}

function fillKernelSelect() {
  const select = $("conv-kernel");
  const current = select.value || "chapter";
  select.replaceChildren();
  const add = (value, label) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    select.append(o);
  };
  add("chapter", t("conv.kernel_chapter"));
  for (const k of conv.kernels) if (k.name !== "chapter") add(k.name, k.name);
  add("custom", t("conv.kernel_custom"));
  select.value = [...select.options].some((o) => o.value === current) ? current : "chapter";
}

function describeKernel() {
  const name = $("conv-kernel").value;
  const info = conv.kernels.find((k) => k.name === name);
  let text = "";
  if (name === "chapter") text = t("conv.kernel_chapter_desc");
  else if (name === "custom") text = t("conv.kernel_custom_desc");
  else if (info) text = tServer(nameKey("kernel.", name), info.description);
  $("conv-kernel-desc").textContent = text;
}

function onKernelSelect() {
  const name = $("conv-kernel").value;
  const info = conv.kernels.find((k) => k.name === name);
  if (info && info.values) fillKernelGrid(info.values);
  describeKernel();
  schedule();
}

// ------------------------------------------------------------------ the request

function inputValue() {
  const choice = $("conv-input").value;
  if (choice === "drawn") {
    if (!state.prediction) throw new Error(t("conv.no_drawing"));
    const px = state.prediction.pixels; // (H, W), or (H, W, 3) for a colour model: luminance
    return px.map((row) =>
      row.map((v) => (Array.isArray(v) ? 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2] : v)),
    );
  }
  if (choice === "upload") {
    if (!conv.uploaded) throw new Error(t("conv.no_upload"));
    return conv.uploaded;
  }
  if (choice === "digit") return `digit:${$("conv-digit").value}`;
  return choice;
}

function kernelValue() {
  const name = $("conv-kernel").value;
  if (name === "chapter") {
    // The chapter's kernel is named only with the chapter's input; elsewhere its values travel.
    return $("conv-input").value === "chapter" ? "chapter" : gridValues() || "chapter";
  }
  if (name === "custom") return gridValues();
  return name;
}

function paddingValue() {
  const kind = $("conv-padding-kind").value;
  if (kind === "number") return typedNumber("conv-padding");
  return kind;
}

/** A number field as the user typed it (0, -1, 1.5 included: the server says what it takes);
 * undefined while the field is empty (nothing typed yet: no request). */
function typedNumber(id) {
  const raw = $(id).value.trim();
  if (raw === "") return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : raw;
}

async function runConv() {
  let payload;
  try {
    payload = {
      input: inputValue(),
      kernel: kernelValue(),
      stride: typedNumber("conv-stride"),
      padding: paddingValue(),
      dilation: typedNumber("conv-dilation"),
      padding_mode: $("conv-mode").value,
    };
  } catch (err) {
    reportError(err);
    return;
  }
  if ([payload.stride, payload.padding, payload.dilation].includes(undefined)) return;
  conv.seq += 1;
  const mine = conv.seq;
  const form = $("conv-form");
  form.dataset.state = "loading";
  try {
    const result = await postJSON("/api/conv", payload);
    if (mine !== conv.seq) return;
    conv.result = result;
    conv.resultDilation = payload.dilation;
    conv.offset = Array.isArray(result.pads)
      ? [result.pads[0][0], result.pads[1][0]]
      : inputOffset(result.input, result.padded);
    const name = $("conv-kernel").value;
    if (name === "chapter" || !gridValues()) fillKernelGrid(result.kernel);
    conv.step = Math.min(conv.step, Math.max(0, result.steps.length - 1));
    render();
    form.dataset.state = "ready";
    if (conv.failed) hideMessage(); // the server's earlier refusal no longer applies
    conv.failed = false;
  } catch (err) {
    if (mine !== conv.seq) return;
    form.dataset.state = "error";
    conv.failed = true;
    reportError(err, t("conv.failed"));
  }
}

const schedule = debounce(runConv, 120);

/** Where the input sits in the padded input (the padding before each axis). */
function inputOffset(input, padded) {
  const h = input.length;
  const w = h ? input[0].length : 0;
  const ph = padded.length - h;
  const pw = padded.length ? padded[0].length - w : 0;
  const matches = (top, left) =>
    input.every((row, i) => row.every((v, j) => padded[top + i][left + j] === v));
  const preferred = [Math.floor(ph / 2), Math.floor(pw / 2)];
  if (matches(...preferred)) return preferred;
  for (let top = 0; top <= ph; top += 1) {
    for (let left = 0; left <= pw; left += 1) if (matches(top, left)) return [top, left];
  }
  return preferred;
}

// ------------------------------------------------------------------ rendering

function regionCells(step, kh, kw) {
  const d = conv.resultDilation;
  const cells = new Set();
  for (let i = 0; i < kh; i += 1) {
    for (let j = 0; j < kw; j += 1) cells.add(`${step.top + i * d},${step.left + j * d}`);
  }
  return cells;
}

function renderFormula(result) {
  const host = $("conv-formula");
  host.replaceChildren();
  const lines = [
    [t("conv.formula_general"), result.formula.text],
    [t("conv.formula_height"), result.formula.height],
    [t("conv.formula_width"), result.formula.width],
  ];
  for (const [label, text] of lines) {
    const p = document.createElement("p");
    const b = document.createElement("span");
    b.className = "formula-label";
    b.textContent = label;
    const code = document.createElement("code");
    code.textContent = text;
    p.append(b, code);
    host.append(p);
  }
  const size = document.createElement("p");
  size.className = "formula-size";
  size.textContent = t("conv.output_size", {
    h: result.output_size[0],
    w: result.output_size[1],
  });
  host.append(size);
}

function renderOutput(result) {
  const step = result.steps[conv.step];
  const host = $("conv-output");
  host.replaceChildren(
    makeGrid(result.output, {
      name: t("conv.output_title"),
      mark: (i, j) => (step && step.row === i && step.col === j ? "current" : ""),
      onCell: (i, j) => {
        const k = result.steps.findIndex((s) => s.row === i && s.col === j);
        if (k >= 0) goTo(k);
      },
    }),
  );
}

function renderStep() {
  const result = conv.result;
  if (!result) return;
  const steps = result.steps;
  const slider = $("step-slider");
  slider.max = String(Math.max(0, steps.length - 1));
  slider.value = String(conv.step);
  const step = steps[conv.step];
  const pos = $("step-pos");
  const sum = $("step-sum");
  if (!step) {
    pos.textContent = t("conv.no_steps");
    sum.textContent = "";
    return;
  }
  pos.textContent =
    t("conv.step_pos", { k: conv.step + 1, n: steps.length, row: step.row, col: step.col }) +
    (result.steps_truncated ? ` ${t("conv.steps_truncated")}` : "");
  const kh = result.kernel.length;
  const kw = kh ? result.kernel[0].length : 0;
  const region = regionCells(step, kh, kw);
  const [ot, ol] = conv.offset;
  const h = result.input.length;
  const w = h ? result.input[0].length : 0;
  const markPadded = (i, j) => {
    const classes = [];
    if (region.has(`${i},${j}`)) classes.push("region");
    if (i < ot || j < ol || i >= ot + h || j >= ol + w) classes.push("pad");
    return classes.join(" ");
  };
  $("step-padded").replaceChildren(makeGrid(result.padded, { name: t("conv.padded_caption"), mark: markPadded }));
  $("step-kernel").replaceChildren(makeGrid(result.kernel, { name: t("conv.kernel_caption"), numbers: kw <= 9 }));
  $("step-products").replaceChildren(
    makeGrid(step.products, { name: t("conv.products_caption"), numbers: kw <= 9 }),
  );
  sum.textContent = fmt(step.sum);
  const note = $("step-note");
  const printed = result.chapter && result.chapter.printed_output;
  const printedHere = printed && printed[step.row] ? printed[step.row][step.col] : undefined;
  if (printedHere !== undefined && printedHere !== step.sum) {
    note.textContent = t("conv.chapter_differs", { printed: fmt(printedHere), value: fmt(step.sum) });
    note.dataset.kind = "differs";
    note.hidden = false;
  } else if (printedHere !== undefined) {
    note.textContent = t("conv.chapter_agrees", { value: fmt(step.sum) });
    note.dataset.kind = "agrees";
    note.hidden = false;
  } else {
    note.hidden = true;
  }
  sum.dataset.value = String(step.sum);
  sum.dataset.row = String(step.row);
  sum.dataset.col = String(step.col);
  sum.dataset.step = String(conv.step);
  renderOutput(result);
}

function render() {
  const result = conv.result;
  if (!result) return;
  renderFormula(result);
  renderStep();
}

function goTo(k) {
  if (!conv.result) return;
  const n = conv.result.steps.length;
  conv.step = Math.min(Math.max(0, k), Math.max(0, n - 1));
  renderStep();
}

function stopPlay() {
  if (conv.timer) window.clearInterval(conv.timer);
  conv.timer = null;
  $("step-play").textContent = t("conv.play");
  $("step-play").dataset.i18n = "conv.play";
}

function togglePlay() {
  if (conv.timer) {
    stopPlay();
    return;
  }
  if (!conv.result || !conv.result.steps.length) return;
  if (conv.step >= conv.result.steps.length - 1) goTo(0);
  $("step-play").dataset.i18n = "conv.pause";
  $("step-play").textContent = t("conv.pause");
  conv.timer = window.setInterval(() => {
    if (!conv.result || conv.step >= conv.result.steps.length - 1) stopPlay();
    else goTo(conv.step + 1);
  }, PLAY_MS);
}

// ------------------------------------------------------------------ uploaded image

async function onUpload(event) {
  const file = event.target.files && event.target.files[0];
  event.target.value = "";
  if (!file) return;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    reportError(new Error(t("conv.upload_unreadable", { name: file.name })));
    return;
  }
  const s = Math.min(1, UPLOAD_MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * s));
  const h = Math.max(1, Math.round(bitmap.height * s));
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  conv.uploaded = Array.from({ length: h }, (_, i) =>
    Array.from({ length: w }, (_, j) => {
      const p = (i * w + j) * 4;
      return Math.round(0.299 * data[p] + 0.587 * data[p + 1] + 0.114 * data[p + 2]);
    }),
  );
  schedule();
}

// ------------------------------------------------------------------ wiring

let started = false;

/** Called when the tab is shown: the first time, load the kernels and run the chapter example. */
export async function showConv() {
  if (started) return;
  started = true;
  try {
    const body = await getJSON("/api/kernels");
    conv.kernels = body.kernels || [];
  } catch (err) {
    reportError(err, t("conv.kernels_failed"));
  }
  fillKernelSelect();
  describeKernel();
  runConv();
}

export function initConv() {
  const form = $("conv-form");
  form.addEventListener("submit", (e) => e.preventDefault());
  $("conv-input").addEventListener("change", () => {
    $("conv-upload-field").hidden = $("conv-input").value !== "upload";
    $("conv-digit-field").hidden = $("conv-input").value !== "digit";
    if ($("conv-input").value !== "upload" || conv.uploaded) schedule();
  });
  $("conv-upload").addEventListener("change", onUpload);
  $("conv-kernel").addEventListener("change", onKernelSelect);
  $("conv-ksize").addEventListener("change", resizeKernel);
  for (const id of ["conv-stride", "conv-dilation", "conv-padding", "conv-mode", "conv-digit"]) {
    $(id).addEventListener("input", schedule);
  }
  $("conv-padding-kind").addEventListener("change", () => {
    $("conv-padding-field").hidden = $("conv-padding-kind").value !== "number";
    schedule();
  });
  $("step-prev").addEventListener("click", () => {
    stopPlay();
    goTo(conv.step - 1);
  });
  $("step-next").addEventListener("click", () => {
    stopPlay();
    goTo(conv.step + 1);
  });
  $("step-play").addEventListener("click", togglePlay);
  $("step-slider").addEventListener("input", () => {
    stopPlay();
    goTo(Number($("step-slider").value));
  });
  onLangChange(() => {
    fillKernelSelect();
    describeKernel();
    for (const el of $("conv-grid").querySelectorAll("input")) {
      el.setAttribute("aria-label", t("conv.kernel_cell", { i: el.dataset.i, j: el.dataset.j }));
    }
    if (conv.timer) $("step-play").textContent = t("conv.pause");
    render();
  });
}
