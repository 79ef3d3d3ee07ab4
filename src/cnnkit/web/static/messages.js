// The visible message area: server errors (their `error` text) and other problems, shown
// without stopping the page.

let hideTimer = null;

export function showMessage(text, kind = "error") {
  const box = document.getElementById("message");
  const span = document.getElementById("message-text");
  span.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  if (hideTimer) window.clearTimeout(hideTimer);
  hideTimer = kind === "info" ? window.setTimeout(hideMessage, 4000) : null;
}

export function hideMessage() {
  document.getElementById("message").hidden = true;
}

export function initMessages() {
  document.getElementById("message-close").addEventListener("click", hideMessage);
}

/** Show an error from an API call (ApiError message), ignoring aborted requests. */
export function reportError(err, prefix) {
  if (err && err.name === "AbortError") return;
  const text = err && err.message ? err.message : String(err);
  showMessage(prefix ? `${prefix}: ${text}` : text);
}
