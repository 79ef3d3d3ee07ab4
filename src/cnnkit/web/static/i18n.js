// The page's text: one catalog (i18n.json, English and Japanese), applied to elements that
// carry data-i18n="key" (text) or data-i18n-attr="attr:key;attr:key" (attributes).

const STORAGE_KEY = "cnnkit.lang";
const LANGS = ["en", "ja"];

let catalog = { en: {}, ja: {} };
let lang = "en";
const listeners = [];

/** Load the catalog and choose the language: the remembered toggle, else the server's <html lang>. */
export async function initI18n() {
  const response = await fetch("/static/i18n.json");
  if (!response.ok) throw new Error(`i18n.json: HTTP ${response.status}`);
  catalog = await response.json();
  let stored = null;
  try {
    stored = window.localStorage.getItem(STORAGE_KEY);
  } catch {
    stored = null; // storage may be disabled; the server's choice stands
  }
  const fromServer = (document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  lang = LANGS.includes(stored) ? stored : LANGS.includes(fromServer) ? fromServer : "en";
  if (lang === "ja") await japaneseFont();
  applyI18n(document);
  // The Japanese font (style.css) arrives after the first layout: Chromium may keep tofu in
  // text laid out while it loaded, so the text is set again once it is there (as a switch
  // of language does: the static text, then the views' own).
  if (document.fonts) {
    document.fonts.addEventListener("loadingdone", () => {
      applyI18n(document);
      for (const fn of listeners) fn(lang);
    });
  }
}

/** Load the page's Japanese font (style.css) before Japanese text is laid out; at most 3 s
 * (without it, the system's fonts are used). */
function japaneseFont() {
  if (!document.fonts || !document.fonts.load) return Promise.resolve();
  const load = document.fonts.load('1em "cnnkit IPAexGothic"', "日本語の受容野").catch(() => []);
  return Promise.race([load, new Promise((resolve) => window.setTimeout(resolve, 3000))]);
}

export function currentLang() {
  return lang;
}

/** The text of `key` in the current language, with {name} placeholders filled from `params`. */
export function t(key, params = {}) {
  const table = catalog[lang] || {};
  let text = table[key];
  if (text === undefined) text = (catalog.en || {})[key];
  if (text === undefined) {
    console.warn(`i18n: missing key ${key}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/** A text the server sent in English (a kernel's or a preset's description), in the current
 * language: the catalog's `key` when its English is that text, else the text as sent. */
export function tServer(key, english) {
  const en = (catalog.en || {})[key];
  return en !== undefined && en === english ? t(key) : english;
}

/** The catalog key of a server name's description: `prefix` + the name, dashes as "_". */
export function nameKey(prefix, name) {
  return prefix + String(name).replace(/-/g, "_");
}

/** Fill every data-i18n element under `root`. */
export function applyI18n(root) {
  document.documentElement.lang = lang;
  document.title = t("app.title");
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

/** Switch language, remember it, re-apply the static text and tell the views to re-render. */
export function setLang(next) {
  if (!LANGS.includes(next)) return;
  lang = next;
  try {
    window.localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // not remembered; the switch still applies to this page
  }
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

export function toggleLang() {
  setLang(lang === "en" ? "ja" : "en");
}

/** `fn(lang)` runs after every language switch (views re-render their dynamic text). */
export function onLangChange(fn) {
  listeners.push(fn);
}

/** Numbers in the page's language (thousands separators). */
export function formatInt(n) {
  return new Intl.NumberFormat(lang === "ja" ? "ja-JP" : "en-US").format(n);
}
