// The cnnkit playground: tabs, language toggle, the model line; each view lives in its module
// (pad.js, layers.js, conv.js, rf.js). Plain ES modules, no build step, no external requests.

import { getJSON } from "./api.js";
import { currentLang, formatInt, initI18n, onLangChange, t, toggleLang } from "./i18n.js";
import { initConv, showConv } from "./conv.js";
import { initLayers, renderSummary, showInside } from "./layers.js";
import { initMessages, reportError } from "./messages.js";
import { initPad, renderSeenHint } from "./pad.js";
import { initRf, showRf } from "./rf.js";
import { state } from "./state.js";

const VIEWS = ["draw", "inside", "conv", "rf"];

function showView(name) {
  if (!VIEWS.includes(name)) name = "draw";
  for (const v of VIEWS) {
    const tab = document.getElementById(`tab-${v}`);
    const panel = document.getElementById(`view-${v}`);
    const on = v === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    panel.hidden = !on;
  }
  document.body.dataset.view = name;
  showInside(name === "inside");
  if (name === "conv") showConv();
  if (name === "rf") showRf();
  if (window.location.hash !== `#${name}`) window.history.replaceState(null, "", `#${name}`);
}

function initTabs() {
  const tabs = VIEWS.map((v) => document.getElementById(`tab-${v}`));
  for (const tab of tabs) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
    tab.addEventListener("keydown", (e) => {
      const i = tabs.indexOf(tab);
      let j = null;
      if (e.key === "ArrowRight") j = (i + 1) % tabs.length;
      if (e.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
      if (j !== null) {
        e.preventDefault();
        tabs[j].focus();
        showView(tabs[j].dataset.view);
      }
    });
  }
  window.addEventListener("hashchange", () => showView(window.location.hash.slice(1)));
}

function renderModelLine() {
  const el = document.getElementById("model-line");
  const m = state.model;
  if (!m) {
    el.textContent = "";
    return;
  }
  const source = m.source === "bundled" ? t("model.bundled") : m.source;
  const parts = [
    t("model.name", { name: m.name }),
    t("model.params", { params: formatInt(m.totals.params) }),
  ];
  if (m.accuracy !== null && m.accuracy !== undefined) {
    parts.push(t("model.accuracy", { accuracy: (m.accuracy * 100).toFixed(2) }));
  }
  parts.push(t("model.source", { source }));
  el.textContent = parts.join(" · ");
  // the tooltip: the source as the server names it ("bundled" or a path); in another
  // language the bundled model's words instead of the English key
  el.title = currentLang() === "en" ? m.source : source;
}

async function loadModel() {
  try {
    state.model = await getJSON("/api/model");
  } catch (err) {
    reportError(err, t("model.failed"));
    return;
  }
  renderModelLine();
  renderSummary();
  renderSeenHint();
}

async function main() {
  initMessages();
  try {
    await initI18n();
  } catch (err) {
    reportError(err);
  }
  document.getElementById("lang-toggle").addEventListener("click", toggleLang);
  onLangChange(renderModelLine);
  initTabs();
  for (const button of document.querySelectorAll("[data-goto]")) {
    button.addEventListener("click", () => showView(button.dataset.goto));
  }
  initPad();
  initLayers();
  initConv();
  initRf();
  await loadModel();
  showView(window.location.hash.slice(1) || "draw");
  document.body.dataset.ready = "true";
}

main();
