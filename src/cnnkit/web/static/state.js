// What the views share: the model's description (/api/model) and the latest prediction.

export const state = {
  model: null, // GET /api/model
  prediction: null, // the latest POST /api/predict response (with layer outputs)
};

const predictionListeners = [];

export function setPrediction(prediction) {
  state.prediction = prediction;
  for (const fn of predictionListeners) fn(prediction);
}

/** `fn(prediction)` runs after every new prediction (null when the pad was cleared). */
export function onPrediction(fn) {
  predictionListeners.push(fn);
}

/**
 * Call `fn` `ms` milliseconds after a call, once for all the calls in between: while calls keep
 * coming (a pen moving), `fn` runs every `ms` ms, and once more after the last call.
 */
export function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = window.setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
}

/** Call `fn` once `ms` milliseconds have passed without another call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    if (timer) window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      timer = null;
      fn(...args);
    }, ms);
  };
}
