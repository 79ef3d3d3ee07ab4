// 1. Draw and predict: the drawing pad (pointer events: mouse, touch, pen; undo; clear), image
// upload, the 28x28 image the model sees and the class probabilities, updated while drawing.

import { postImage } from "./api.js";
import { onLangChange, t } from "./i18n.js";
import { decodeMap, paintImage } from "./maps.js";
import { hideMessage, reportError } from "./messages.js";
import { onPrediction, setPrediction, state, throttle } from "./state.js";

// While the pen moves, a prediction every 150 ms (one request at a time); one more at the end.
const PREDICT_EVERY_MS = 150;

const pad = {
  canvas: null,
  ctx: null,
  strokes: [], // {width, points: [[x, y], ...]} in canvas pixels
  background: null, // an uploaded image (ImageBitmap), drawn under the strokes
  active: null, // the stroke being drawn
  pointerId: null,
};

let inFlight = false;
let pending = false;
let generation = 0; // bumped by clear: answers to older requests are dropped

function penWidth() {
  return Number(document.getElementById("pen-width").value);
}

function paintBackground() {
  const { ctx, canvas } = pad;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (pad.background) {
    const bg = pad.background;
    const s = Math.min(canvas.width / bg.width, canvas.height / bg.height);
    const w = bg.width * s;
    const h = bg.height * s;
    ctx.drawImage(bg, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  }
}

function strokePath(stroke) {
  const { ctx } = pad;
  const pts = stroke.points;
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineWidth = stroke.width;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (pts.length === 1) {
    ctx.beginPath();
    ctx.arc(pts[0][0], pts[0][1], stroke.width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (let i = 1; i < pts.length; i += 1) ctx.lineTo(pts[i][0], pts[i][1]);
  ctx.stroke();
}

function redraw() {
  pad.canvas.dataset.strokes = String(pad.strokes.length);
  paintBackground();
  for (const s of pad.strokes) strokePath(s);
  if (pad.active) strokePath(pad.active);
}

function isEmpty() {
  return pad.strokes.length === 0 && !pad.active && !pad.background;
}

function canvasPoint(event) {
  const rect = pad.canvas.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) / rect.width) * pad.canvas.width,
    ((event.clientY - rect.top) / rect.height) * pad.canvas.height,
  ];
}

function onPointerDown(event) {
  if (pad.pointerId !== null) return;
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  pad.pointerId = event.pointerId;
  pad.canvas.setPointerCapture(event.pointerId);
  pad.active = { width: penWidth(), points: [canvasPoint(event)] };
  redraw();
  schedulePredict();
}

function onPointerMove(event) {
  if (event.pointerId !== pad.pointerId || !pad.active) return;
  event.preventDefault();
  const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
  for (const e of events.length ? events : [event]) pad.active.points.push(canvasPoint(e));
  redraw();
  schedulePredict();
}

function onPointerUp(event) {
  if (event.pointerId !== pad.pointerId) return;
  if (pad.active) pad.strokes.push(pad.active);
  pad.active = null;
  pad.pointerId = null;
  redraw();
  schedulePredict();
}

function padBlob() {
  return new Promise((resolve) => pad.canvas.toBlob(resolve, "image/png"));
}

/** Send the pad's picture; one request at a time, the latest picture wins. */
async function predictNow() {
  if (isEmpty()) return;
  if (inFlight) {
    pending = true;
    return;
  }
  inFlight = true;
  const mine = generation;
  const sent = pad.strokes.length + (pad.active ? 1 : 0);
  const sentActive = Boolean(pad.active);
  try {
    const blob = await padBlob();
    const result = await postImage(blob);
    if (mine === generation) {
      hideMessage();
      setPrediction(result);
      // For tests and screen readers alike: which picture the shown prediction belongs to.
      pad.canvas.dataset.shown = sentActive ? "" : String(sent);
      shownCount += 1;
      pad.canvas.dataset.predictions = String(shownCount);
    }
  } catch (err) {
    if (mine === generation) reportError(err, t("draw.predict_failed"));
  } finally {
    inFlight = false;
    if (pending) {
      pending = false;
      predictNow();
    }
  }
}

const schedulePredict = throttle(predictNow, PREDICT_EVERY_MS);
let shownCount = 0;

function undo() {
  if (pad.strokes.length) pad.strokes.pop();
  else pad.background = null;
  redraw();
  if (isEmpty()) clearPrediction();
  else schedulePredict();
}

function clearPrediction() {
  generation += 1;
  pad.canvas.dataset.shown = "";
  setPrediction(null);
}

function clearPad() {
  pad.strokes = [];
  pad.background = null;
  pad.active = null;
  redraw();
  clearPrediction();
}

/** Upload: the server judges the file; only an accepted image replaces the pad's picture. */
async function onUpload(event) {
  const input = event.target;
  const file = input.files && input.files[0];
  input.value = "";
  if (!file) return;
  generation += 1;
  const mine = generation;
  try {
    const result = await postImage(file);
    if (mine !== generation) return;
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      bitmap = null; // the server read it but this browser cannot draw it: keep the prediction
    }
    pad.strokes = [];
    pad.background = bitmap;
    redraw();
    hideMessage();
    setPrediction(result);
    pad.canvas.dataset.shown = "upload";
  } catch (err) {
    reportError(err, t("draw.upload_failed", { name: file.name }));
  }
}

/** The hint under "What the model sees": MNIST-style preprocessing, or a plain resize. */
export function renderSeenHint() {
  const shape = (state.model && state.model.input_shape) || [1, 28, 28];
  const [c, h, w] = shape;
  const mnist = c === 1 && h === 28 && w === 28;
  document.getElementById("seen-hint").textContent = mnist
    ? t("draw.seen_hint")
    : t("draw.seen_hint_other", { h, w, c });
}

function renderSeen(prediction) {
  const seen = document.getElementById("seen");
  if (!prediction) {
    seen.getContext("2d").clearRect(0, 0, seen.width, seen.height);
    return;
  }
  paintImage(seen, decodeMap(prediction.input));
}

function renderProbs(prediction) {
  const host = document.getElementById("probs");
  const label = document.getElementById("predicted");
  const classes = (state.model && state.model.classes) || [];
  host.replaceChildren();
  if (!prediction) {
    label.textContent = t("draw.empty");
    label.dataset.predicted = "";
    return;
  }
  const probs = prediction.probabilities;
  const best = prediction.predicted;
  const name = classes[best] ?? String(best);
  label.textContent = t("draw.predicted", {
    name,
    percent: (probs[best] * 100).toFixed(1),
  });
  label.dataset.predicted = String(best);
  probs.forEach((p, k) => {
    const row = document.createElement("div");
    row.className = "prob-row" + (k === best ? " best" : "");
    row.setAttribute("role", "listitem");
    row.dataset.cls = String(k);
    const name_ = document.createElement("span");
    name_.className = "prob-name";
    name_.textContent = classes[k] ?? String(k);
    const track = document.createElement("span");
    track.className = "prob-track";
    const bar = document.createElement("span");
    bar.className = "prob-bar";
    bar.style.width = `${(p * 100).toFixed(2)}%`;
    track.append(bar);
    const pct = document.createElement("span");
    pct.className = "prob-pct";
    pct.textContent = `${(p * 100).toFixed(1)}%`;
    row.append(name_, track, pct);
    row.setAttribute("aria-label", t("draw.prob_aria", { name: name_.textContent, percent: pct.textContent }));
    host.append(row);
  });
}

export function initPad() {
  pad.canvas = document.getElementById("pad");
  pad.ctx = pad.canvas.getContext("2d");
  redraw();
  pad.canvas.addEventListener("pointerdown", onPointerDown);
  pad.canvas.addEventListener("pointermove", onPointerMove);
  pad.canvas.addEventListener("pointerup", onPointerUp);
  pad.canvas.addEventListener("pointercancel", onPointerUp);
  document.getElementById("pad-undo").addEventListener("click", undo);
  document.getElementById("pad-clear").addEventListener("click", clearPad);
  document.getElementById("upload").addEventListener("change", onUpload);
  onPrediction((p) => {
    renderSeen(p);
    renderProbs(p);
  });
  onLangChange(() => {
    renderProbs(state.prediction);
    renderSeenHint();
  });
  renderSeenHint();
  renderProbs(null);
}
