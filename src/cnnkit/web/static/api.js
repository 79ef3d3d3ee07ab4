// JSON calls to the playground's /api/ (see docs/playground.md, "API"). Every failure becomes an
// ApiError whose message is the server's one-line `message` (the `error` line in the page's
// language, asked for with Accept-Language), or a short network message.

import { currentLang } from "./i18n.js";

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function parse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const said = body && (typeof body.message === "string" ? body.message : body.error);
    const text = typeof said === "string" && said ? said : `HTTP ${response.status}`;
    throw new ApiError(text, response.status);
  }
  if (body === null) throw new ApiError("the server sent no JSON", response.status);
  return body;
}

async function call(url, init = {}) {
  let response;
  const headers = { ...(init.headers || {}), "Accept-Language": currentLang() };
  try {
    response = await fetch(url, { ...init, headers });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(`cannot reach the server (${err && err.message ? err.message : err})`, 0);
  }
  return parse(response);
}

export function getJSON(url) {
  return call(url);
}

export function postJSON(url, payload, signal) {
  return call(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
    signal,
  });
}

/** POST an image (Blob or File) to /api/predict. */
export function postImage(blob, { layers = true, signal } = {}) {
  const type = blob.type === "image/png" || blob.type === "image/jpeg" ? blob.type : "application/octet-stream";
  return call(`/api/predict${layers ? "" : "?layers=0"}`, {
    method: "POST",
    headers: { "Content-Type": type },
    body: blob,
    signal,
  });
}
